"""Labelled feature arrays (``x`` float rows, ``y`` integer labels) as the continual tools read and write them.

On disk a dataset is one ``.npz`` file with arrays ``x`` (shape ``[n, d]``) and ``y`` (shape ``[n]``); every tool
checks shapes, emptiness and NaNs here, once, so bad input fails with one clear error before any training starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from malot.errors import ToolError

if TYPE_CHECKING:
    import torch

__all__ = ["LabelledData", "check_features", "load_npz", "save_npz"]


@dataclass
class LabelledData:
    """Feature rows ``x`` (float32, ``[n, d]``) and integer labels ``y`` (``[n]``)."""

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        check_features(self.x, "x")
        if self.y.ndim != 1 or self.y.shape[0] != self.x.shape[0]:
            raise ToolError(
                f"labels have shape {tuple(self.y.shape)} but there are {self.x.shape[0]} feature rows",
                hint="give one integer label per row of x",
            )
        if self.y.is_floating_point() or bool((self.y < 0).any()):
            raise ToolError("labels must be non-negative integers", hint="encode classes as 0, 1, 2, ...")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def dim(self) -> int:
        """The feature dimension."""
        return int(self.x.shape[1])

    def subset(self, index: torch.Tensor) -> LabelledData:
        """The rows selected by ``index`` (a boolean mask or integer positions)."""
        return LabelledData(self.x[index], self.y[index])


def check_features(x: torch.Tensor, name: str = "x", *, allow_empty: bool = False) -> None:
    """Raise :class:`ToolError` unless ``x`` is a finite 2-D float tensor (non-empty unless ``allow_empty``)."""
    if x.ndim != 2:
        raise ToolError(f"{name} must be a 2-D array [rows, features], got shape {tuple(x.shape)}")
    if not allow_empty and x.shape[0] == 0:
        raise ToolError(f"{name} is empty", hint="give at least one example")
    if not x.is_floating_point():
        raise ToolError(f"{name} must hold floats, got {x.dtype}")
    if not bool(x.isfinite().all()):
        raise ToolError(f"{name} contains NaN or infinite values", hint="clean or impute the features first")


def load_npz(path: str | Path) -> LabelledData:
    """Read ``x`` and ``y`` from an ``.npz`` file, checking them."""
    import numpy as np
    import torch

    file = Path(path)
    if not file.is_file():
        raise ToolError(f"dataset {file} does not exist", hint="write one with numpy.savez(path, x=..., y=...)")
    try:
        with np.load(file) as arrays:
            if "x" not in arrays or "y" not in arrays:
                raise ToolError(f"{file} must hold arrays 'x' and 'y'", hint="numpy.savez(path, x=..., y=...)")
            x = torch.from_numpy(np.asarray(arrays["x"], dtype=np.float32).copy())
            y_raw = np.asarray(arrays["y"])
    except (OSError, ValueError) as exc:
        raise ToolError(f"{file} is not a readable .npz file: {exc}") from None
    if y_raw.dtype.kind not in "iu":
        raise ToolError(f"{file}: labels 'y' must be integers, got {y_raw.dtype}")
    return LabelledData(x, torch.from_numpy(y_raw.astype(np.int64)))


def save_npz(data: LabelledData, path: str | Path) -> Path:
    """Write ``data`` as an ``.npz`` file with arrays ``x`` and ``y``."""
    import numpy as np

    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    np.savez(file, x=data.x.numpy(), y=data.y.numpy())
    return file
