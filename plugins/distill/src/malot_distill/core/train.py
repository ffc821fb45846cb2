"""Small training helpers shared by the distill tools: Adam loops over minibatches, accuracy, frozen copies."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from malot.errors import ToolError

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["accuracy", "batches", "fit", "frozen_copy"]


def frozen_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` in eval mode with no parameter requiring gradients."""
    twin = copy.deepcopy(model).eval()
    for p in twin.parameters():
        p.requires_grad_(False)
    return twin


def batches(n: int, batch_size: int, steps: int, seed: int) -> list[torch.Tensor]:
    """``steps`` index batches drawn without replacement within each pass over ``n`` samples."""
    import torch

    if n <= 0:
        raise ToolError("no training samples", hint="pass a non-empty data file")
    gen = torch.Generator().manual_seed(seed)
    out: list[torch.Tensor] = []
    order = torch.randperm(n, generator=gen)
    pos = 0
    size = min(batch_size, n)
    for _ in range(steps):
        if pos + size > n:
            order, pos = torch.randperm(n, generator=gen), 0
        out.append(order[pos : pos + size])
        pos += size
    return out


def fit(
    params: Iterable[torch.nn.Parameter],
    loss_fn: Callable[[int], torch.Tensor],
    *,
    steps: int,
    lr: float,
    weight_decay: float = 0.0,
) -> list[float]:
    """Minimise ``loss_fn(step)`` with Adam for ``steps`` steps; return the losses; stop with a clear error on NaN."""
    import torch

    trainable = [p for p in params if p.requires_grad]
    if not trainable:
        raise ToolError("nothing to train: no parameter requires gradients")
    opt = torch.optim.Adam(trainable, lr=lr, weight_decay=weight_decay)
    losses: list[float] = []
    for step in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(step)
        if not bool(torch.isfinite(loss)):
            raise ToolError(f"the loss became {float(loss)} at step {step}", hint="lower the learning rate")
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def accuracy(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy of ``model(x)`` against ``y``."""
    import torch

    with torch.no_grad():
        return float((model(x).argmax(-1) == y).float().mean())
