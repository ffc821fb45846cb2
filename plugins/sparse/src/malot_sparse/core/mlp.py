"""Tiny classifiers for the structural tools: an MLP with named layers, data files, training and checkpoints.

*Data files* are ``.safetensors`` or ``.npz`` files holding ``x`` (float, ``(n, features)``) and ``y`` (integer class
ids, ``(n,)``). *MLP checkpoints* are safetensors files of an :class:`MLP` state dict with its shape in the metadata
(``format = malot-sparse-mlp``) and, for sparse networks, boolean masks stored as ``mask::<weight name>``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from malot.errors import ToolError

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "accuracy",
    "build_mlp",
    "check_matches",
    "linear_layers",
    "load_mlp",
    "load_xy",
    "save_mlp",
    "split",
    "train_classifier",
]

_FORMAT = "malot-sparse-mlp"


def build_mlp(in_dim: int, widths: Sequence[int], classes: int) -> nn.Sequential:
    """``Linear → ReLU`` for every hidden width, then a linear head; layers are ``0, 2, 4, ...`` in the Sequential."""
    from torch import nn

    if in_dim <= 0 or classes <= 1 or any(w <= 0 for w in widths):
        raise ToolError(f"bad MLP shape: in={in_dim}, widths={list(widths)}, classes={classes}")
    layers: list[nn.Module] = []
    previous = in_dim
    for width in widths:
        layers += [nn.Linear(previous, width), nn.ReLU()]
        previous = width
    layers.append(nn.Linear(previous, classes))
    return nn.Sequential(*layers)


def check_matches(model: nn.Module, features: int, classes: int, role: str = "teacher") -> None:
    """Raise a clear :class:`ToolError` when an MLP checkpoint does not fit the data's features and classes."""
    layers = linear_layers(model)
    if layers[0].in_features != features or layers[-1].out_features != classes:
        raise ToolError(
            f"the {role} takes {layers[0].in_features} features and predicts {layers[-1].out_features} classes; "
            f"the data have {features} features and {classes} classes",
            hint=f"pass a {role} trained on data of this shape, or leave it out to train one here",
        )


def linear_layers(model: nn.Module) -> list[nn.Linear]:
    """The model's ``nn.Linear`` modules in order."""
    from torch import nn

    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def load_xy(path: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Read ``x`` (float32) and ``y`` (int64) from a ``.safetensors`` or ``.npz`` file, with clear errors."""
    import torch

    file = Path(path)
    if not file.is_file():
        raise ToolError(f"data file {file} does not exist", hint="write x and y into a .safetensors or .npz file")
    if file.suffix == ".npz":
        import numpy as np

        with np.load(file) as arrays:
            if "x" not in arrays or "y" not in arrays:
                raise ToolError(f"{file} must hold arrays 'x' and 'y'", hint=f"it holds {sorted(arrays.files)}")
            x, y = torch.from_numpy(arrays["x"]), torch.from_numpy(arrays["y"])
    elif file.suffix == ".safetensors":
        from safetensors.torch import load_file

        tensors = load_file(str(file))
        if "x" not in tensors or "y" not in tensors:
            raise ToolError(f"{file} must hold tensors 'x' and 'y'", hint=f"it holds {sorted(tensors)}")
        x, y = tensors["x"], tensors["y"]
    else:
        raise ToolError(f"unsupported data file {file.name}", hint="use .safetensors or .npz with x and y")
    if x.dim() != 2 or y.dim() != 1 or x.shape[0] != y.shape[0]:
        raise ToolError(f"{file}: x must be (n, features) and y (n,), got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape[0] < 2:
        raise ToolError(f"{file} holds {x.shape[0]} examples", hint="give at least two")
    x = x.float()
    if not torch.isfinite(x).all():
        raise ToolError(f"{file}: x contains NaN or inf", hint="clean the features first")
    if y.is_floating_point() and not torch.equal(y, y.round()):
        raise ToolError(f"{file}: y must hold integer class ids")
    y = y.long()
    if int(y.min()) < 0:
        raise ToolError(f"{file}: class ids must be >= 0")
    return x, y


def split(
    x: torch.Tensor, y: torch.Tensor, test_fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A seeded random train/test split (at least one example on each side)."""
    import torch

    n = x.shape[0]
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_test = min(max(1, round(test_fraction * n)), n - 1)
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


def train_classifier(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int,
    lr: float,
    batch_size: int = 256,
    seed: int = 0,
    masks: Mapping[str, torch.Tensor] | None = None,
    teacher: nn.Module | None = None,
    kd_weight: float = 0.0,
    temperature: float = 4.0,
    params: Sequence[torch.nn.Parameter] | None = None,
) -> list[float]:
    """Train with Adam on cross-entropy (plus Hinton KD from ``teacher`` with weight ``kd_weight``).

    ``masks`` (parameter name → boolean mask) keep pruned entries at exactly zero: gradients are masked and the
    weights re-masked after every step. ``params`` restricts training to those parameters. Returns the losses.
    """
    import torch
    import torch.nn.functional as F

    named = dict(model.named_parameters())
    trainable = list(params) if params is not None else [p for p in model.parameters() if p.requires_grad]
    if steps <= 0 or not trainable:
        return []
    optimizer = torch.optim.Adam(trainable, lr=lr)
    generator = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    model.train()
    for _ in range(steps):
        pick = torch.randint(x.shape[0], (min(batch_size, x.shape[0]),), generator=generator)
        logits = model(x[pick])
        loss = F.cross_entropy(logits, y[pick])
        if teacher is not None and kd_weight > 0:
            with torch.no_grad():
                soft = F.softmax(teacher(x[pick]) / temperature, dim=1)
            kd = F.kl_div(F.log_softmax(logits / temperature, dim=1), soft, reduction="batchmean")
            loss = (1 - kd_weight) * loss + kd_weight * temperature**2 * kd
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        if masks:
            for name, mask in masks.items():
                grad = named[name].grad
                if grad is not None:
                    grad.mul_(mask)
        optimizer.step()
        if masks:
            with torch.no_grad():
                for name, mask in masks.items():
                    named[name].mul_(mask)
        losses.append(float(loss.detach()))
    model.eval()
    return losses


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Share of ``x`` the model classifies as ``y``."""
    import torch

    with torch.no_grad():
        return float((model(x).argmax(dim=1) == y).float().mean())


def save_mlp(
    model: nn.Sequential,
    path: str | Path,
    *,
    masks: Mapping[str, torch.Tensor] | None = None,
    extra: Mapping[str, object] | None = None,
) -> Path:
    """Write an :func:`build_mlp` model (and masks) to one safetensors file with its shape in the metadata."""
    from safetensors.torch import save_file

    layers = linear_layers(model)
    meta = {
        "format": _FORMAT,
        "in_dim": str(layers[0].in_features),
        "widths": json.dumps([layer.out_features for layer in layers[:-1]]),
        "classes": str(layers[-1].out_features),
        "extra": json.dumps(dict(extra or {})),
    }
    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    for name, mask in (masks or {}).items():
        tensors[f"mask::{name}"] = mask.to(dtype=tensors[name].dtype).contiguous()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out), metadata=meta)
    return out


def load_mlp(path: str | Path) -> tuple[nn.Sequential, dict[str, torch.Tensor], dict[str, object]]:
    """Read a checkpoint written by :func:`save_mlp`: the model, its masks (boolean) and the extra metadata."""
    from safetensors import safe_open

    file = Path(path)
    if not file.is_file():
        raise ToolError(f"model checkpoint {file} does not exist", hint="write one with lottery_ticket or tas_search")
    with safe_open(str(file), framework="pt") as handle:
        meta = handle.metadata() or {}
        if meta.get("format") != _FORMAT:
            raise ToolError(f"{file} is not a sparse-plugin MLP checkpoint", hint="write one with lottery_ticket")
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    model = build_mlp(int(meta["in_dim"]), json.loads(meta["widths"]), int(meta["classes"]))
    state = {k: v for k, v in tensors.items() if not k.startswith("mask::")}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ToolError(f"{file}: the tensors do not match the recorded shape ({exc})") from None
    masks = {k.removeprefix("mask::"): v.bool() for k, v in tensors.items() if k.startswith("mask::")}
    model.eval()
    return model, masks, json.loads(meta.get("extra", "{}"))
