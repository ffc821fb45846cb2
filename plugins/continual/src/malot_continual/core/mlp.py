"""The small classifier the continual tools train: an MLP body (the feature extractor) and one or more linear heads.

Saved as one safetensors file whose metadata records the architecture, so a model written by one tool loads in
another (``consolidated_train`` writes it, ``laf_unlearn`` reads it, ...).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from malot.errors import ToolError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from malot_continual.core.data import LabelledData

__all__ = ["accuracy", "build_mlp", "load_mlp", "predict", "save_mlp", "train_epochs"]

_FORMAT = "malot-continual-mlp"


def build_mlp(in_dim: int, hidden: Sequence[int], n_classes: int, *, heads: int = 1) -> nn.Module:
    """``MultiHeadMLP(in_dim, hidden, n_classes, heads)`` (imported lazily so this module stays light)."""
    from malot_continual.core.nets import MultiHeadMLP

    return MultiHeadMLP(in_dim, list(hidden), n_classes, heads=heads)


def save_mlp(model: nn.Module, path: str | Path) -> Path:
    """Write a :class:`~malot_continual.core.nets.MultiHeadMLP` and its architecture to one safetensors file."""
    from safetensors.torch import save_file

    from malot_continual.core.nets import MultiHeadMLP

    if not isinstance(model, MultiHeadMLP):
        raise ToolError("only MultiHeadMLP models can be saved in the continual plugin's format")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": _FORMAT, "config": json.dumps(model.config())}
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(out), metadata=meta)
    return out


def load_mlp(path: str | Path) -> nn.Module:
    """Read a model written by :func:`save_mlp`."""
    from safetensors import safe_open

    from malot_continual.core.nets import MultiHeadMLP

    file = Path(path)
    if not file.is_file():
        raise ToolError(f"model {file} does not exist", hint="train one with consolidated_train or run_stream")
    with safe_open(str(file), framework="pt") as handle:
        meta = handle.metadata() or {}
        if meta.get("format") != _FORMAT:
            raise ToolError(f"{file} is not a continual-plugin model", hint="models come from consolidated_train")
        state = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    config = json.loads(meta["config"])
    model = MultiHeadMLP(config["in_dim"], config["hidden"], config["n_classes"], heads=config["heads"])
    model.load_state_dict(state)
    return model


def train_epochs(
    model: nn.Module,
    data: LabelledData,
    *,
    epochs: int,
    lr: float,
    batch_size: int = 64,
    head: int = 0,
    seed: int = 0,
) -> int:
    """Plain cross-entropy training of ``model`` (head ``head``) with Adam; returns the number of examples seen."""
    import torch

    from malot_continual.core.nets import MultiHeadMLP

    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    seen = 0
    for _ in range(epochs):
        order = torch.randperm(len(data), generator=g)
        for start in range(0, len(data), batch_size):
            idx = order[start : start + batch_size]
            logits = model(data.x[idx], head=head) if isinstance(model, MultiHeadMLP) else model(data.x[idx])
            loss = torch.nn.functional.cross_entropy(logits, data.y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            seen += int(idx.numel())
    return seen


def predict(model: nn.Module, x: torch.Tensor, *, head: int = 0) -> torch.Tensor:
    """Arg-max class of each row."""
    import torch

    from malot_continual.core.nets import MultiHeadMLP

    with torch.no_grad():
        logits = model(x, head=head) if isinstance(model, MultiHeadMLP) else model(x)
    out: torch.Tensor = logits.argmax(-1)
    return out


def accuracy(model: nn.Module, data: LabelledData, *, head: int = 0) -> float:
    """Fraction of rows of ``data`` whose arg-max class is the label."""
    return float((predict(model, data.x, head=head) == data.y).float().mean())
