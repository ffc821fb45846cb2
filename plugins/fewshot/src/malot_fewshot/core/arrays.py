"""Validation of the arrays the fewshot tools receive: one clear :class:`ToolError` (with a hint) per bad input."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from malot.errors import ToolError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["as_labels", "as_matrix", "as_vector", "check_rows"]


def as_matrix(value: Any, name: str, *, min_rows: int = 1, cols: int | None = None) -> NDArray[np.float64]:
    """``value`` as a finite 2-D float array with at least ``min_rows`` rows (and ``cols`` columns when given)."""
    import numpy as np

    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ToolError(
            f"{name} is not a numeric matrix: {exc}", hint=f"pass {name} as a list of equal-length rows"
        ) from None
    if array.ndim != 2:
        raise ToolError(
            f"{name} must be a 2-D matrix (rows = samples), got shape {array.shape}",
            hint=f"pass {name} as a list of rows, one row per sample",
        )
    if array.shape[0] < min_rows or array.shape[1] == 0:
        raise ToolError(f"{name} has shape {array.shape}; it needs at least {min_rows} row(s) and one column")
    if cols is not None and array.shape[1] != cols:
        raise ToolError(
            f"{name} has {array.shape[1]} columns, expected {cols}", hint="all feature matrices must share a width"
        )
    if not np.isfinite(array).all():
        raise ToolError(f"{name} contains NaN or infinite values", hint="drop or impute those entries first")
    return array


def as_vector(value: Any, name: str, *, length: int | None = None) -> NDArray[np.float64]:
    """``value`` as a finite 1-D float array (of ``length`` entries when given)."""
    import numpy as np

    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ToolError(f"{name} is not a numeric vector: {exc}", hint=f"pass {name} as a list of numbers") from None
    if array.ndim != 1 or array.size == 0:
        raise ToolError(f"{name} must be a non-empty 1-D list of numbers, got shape {array.shape}")
    if length is not None and array.size != length:
        raise ToolError(f"{name} has {array.size} entries, expected {length}", hint="give one entry per sample")
    if not np.isfinite(array).all():
        raise ToolError(f"{name} contains NaN or infinite values", hint="drop or impute those entries first")
    return array


def as_labels(value: Any, name: str, *, length: int | None = None, n_classes: int | None = None) -> NDArray[np.int64]:
    """``value`` as a 1-D array of non-negative integer labels (below ``n_classes`` when given)."""
    import numpy as np

    raw = as_vector(value, name, length=length)
    if (raw != np.round(raw)).any() or (raw < 0).any():
        raise ToolError(f"{name} must hold non-negative integer labels", hint="encode classes as 0, 1, 2, ...")
    labels = raw.astype(np.int64)
    if n_classes is not None and labels.max() >= n_classes:
        raise ToolError(f"{name} has label {int(labels.max())} but there are only {n_classes} classes")
    return labels


def check_rows(arrays: Sequence[tuple[str, Any]]) -> int:
    """Check that the named arrays have the same number of rows; return it."""
    counts = {name: len(array) for name, array in arrays}
    if len(set(counts.values())) > 1:
        raise ToolError(f"row counts differ: {counts}", hint="give one row per sample in every array")
    return next(iter(counts.values()))
