"""Checked conversion of tool inputs (inline lists or ``.npy``/``.npz``/``.csv`` files) to NumPy arrays.

Every tool of this plugin takes features, labels or scores either inline (JSON lists, for agents and small cases) or
as a file path (for real feature matrices). The helpers here turn both into float64/int64 arrays and raise one clear
:class:`~malot.errors.ToolError` for empty data, wrong shapes, NaNs or infinities.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from malot.errors import ToolError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["ArrayLike", "check_matrix", "load_array", "load_labels", "load_matrix"]

ArrayLike = str | Sequence[Any]
"""A path to a ``.npy``/``.npz``/``.csv`` file, or nested lists of numbers."""


def load_array(value: Any, name: str) -> NDArray[np.float64]:
    """Read ``value`` (path or nested lists or array) as a float64 array; files: ``.npy``, ``.npz`` (first array) or
    ``.csv`` (comma separated, no header)."""
    import numpy as np

    if isinstance(value, str | Path):
        path = Path(value)
        if not path.is_file():
            raise ToolError(f"{name}: file {path} does not exist", hint="pass a .npy/.npz/.csv file or inline lists")
        try:
            if path.suffix == ".npy":
                data = np.load(path, allow_pickle=False)
            elif path.suffix == ".npz":
                with np.load(path, allow_pickle=False) as archive:
                    data = archive[archive.files[0]]
            elif path.suffix == ".csv":
                data = np.loadtxt(path, delimiter=",", ndmin=2)
            else:
                raise ToolError(f"{name}: unsupported file type {path.suffix!r}", hint="use .npy, .npz or .csv")
        except (OSError, ValueError) as exc:
            raise ToolError(f"{name}: cannot read {path}: {exc}", hint="check the file format") from exc
        value = data
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ToolError(f"{name} is not a rectangular array of numbers: {exc}", hint="give equal-length rows") from exc
    if array.size == 0:
        raise ToolError(f"{name} is empty", hint="give at least one row of data")
    if not np.all(np.isfinite(array)):
        raise ToolError(f"{name} contains NaN or infinite values", hint="remove or impute them before scoring")
    return array


def check_matrix(array: NDArray[np.float64], name: str, *, rows: int | None = None, min_rows: int = 1) -> None:
    """Raise a :class:`ToolError` unless ``array`` is 2-D with ``rows`` rows (if given) and at least ``min_rows``."""
    if array.ndim != 2:
        raise ToolError(f"{name} must be a 2-D matrix (samples x features), got shape {array.shape}")
    if rows is not None and array.shape[0] != rows:
        raise ToolError(f"{name} has {array.shape[0]} rows but {rows} were expected", hint="one row per sample")
    if array.shape[0] < min_rows:
        raise ToolError(f"{name} needs at least {min_rows} rows, got {array.shape[0]}")


def load_matrix(value: Any, name: str, *, rows: int | None = None, min_rows: int = 1) -> NDArray[np.float64]:
    """:func:`load_array` then :func:`check_matrix`."""
    array = load_array(value, name)
    check_matrix(array, name, rows=rows, min_rows=min_rows)
    return array


def load_labels(value: Any, name: str, *, rows: int | None = None, min_classes: int = 2) -> NDArray[np.int64]:
    """Integer class labels (a 1-D list or file), re-indexed to ``0..C-1`` in sorted order of the given labels."""
    import numpy as np

    raw = load_array(value, name)
    if raw.ndim != 1:
        raise ToolError(f"{name} must be a 1-D list of class labels, got shape {raw.shape}")
    if not np.all(raw == np.round(raw)):
        raise ToolError(f"{name} must hold integer class labels", hint="encode classes as 0, 1, 2, ...")
    if rows is not None and raw.shape[0] != rows:
        raise ToolError(f"{name} has {raw.shape[0]} labels but there are {rows} samples", hint="one label per row")
    _, labels = np.unique(raw.astype(np.int64), return_inverse=True)
    if int(labels.max()) + 1 < min_classes:
        raise ToolError(f"{name} holds fewer than {min_classes} classes", hint="a score needs at least two classes")
    return labels.astype(np.int64)
