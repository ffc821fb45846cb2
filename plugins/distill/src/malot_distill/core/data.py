"""Labelled tensor data for the distill tools: one safetensors file with ``x`` (float, N×D) and ``y`` (int, N).

Optional extra tensors (``x_unlabeled``, ``x_test``/``y_test``, ``domain``) are read by the tools that use them.
Every loader checks shapes, emptiness and NaNs and raises one :class:`ToolError` with a hint.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from malot.errors import ToolError
from malot_distill.core.kd import check_finite

if TYPE_CHECKING:
    import torch

__all__ = ["check_labels", "load_tensors", "require", "save_tensors"]


def save_tensors(tensors: dict[str, torch.Tensor], path: str | Path) -> Path:
    """Write named tensors to one safetensors file."""
    from safetensors.torch import save_file

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().clone().contiguous() for k, v in tensors.items()}, str(out))
    return out


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Read every tensor of a safetensors data file."""
    from safetensors.torch import load_file

    file = Path(path)
    if not file.is_file():
        raise ToolError(f"data file {file} does not exist", hint="pass a .safetensors file with tensors x and y")
    try:
        return dict(load_file(str(file)))
    except Exception as exc:  # safetensors raises its own error types
        raise ToolError(f"{file} is not a readable safetensors file: {exc}", hint="write it with save_tensors") from exc


def require(tensors: dict[str, torch.Tensor], key: str, *, dim: int | None = None) -> torch.Tensor:
    """Return ``tensors[key]`` after checking it exists, is non-empty and finite (and has ``dim`` dimensions)."""
    if key not in tensors:
        raise ToolError(f"the data file has no tensor {key!r} (it has {sorted(tensors)})", hint=f"add {key!r}")
    value = tensors[key]
    check_finite(key, value)
    if dim is not None and value.dim() != dim:
        raise ToolError(f"tensor {key!r} must have {dim} dimensions, it has shape {tuple(value.shape)}")
    return value.float() if value.is_floating_point() else value


def check_labels(x: torch.Tensor, y: torch.Tensor, classes: int | None = None) -> torch.Tensor:
    """Check that ``y`` holds one integer label per row of ``x`` (below ``classes``); return it as int64."""
    if y.is_floating_point():
        raise ToolError("labels y must be integers", hint="store y as an int64 tensor")
    if y.dim() != 1 or y.shape[0] != x.shape[0]:
        raise ToolError(f"labels have shape {tuple(y.shape)} but there are {x.shape[0]} samples")
    if int(y.min()) < 0 or (classes is not None and int(y.max()) >= classes):
        raise ToolError(f"labels must lie in [0, {classes}), got [{int(y.min())}, {int(y.max())}]")
    return y.long()
