"""The small training loop every tool shares: AdamW on the given parameters, a loss closure, per-step losses."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from malot.errors import ToolError

__all__ = ["LossFn", "train_params"]

LossFn = Callable[[int], torch.Tensor]
"""A training objective: called with the step number, returns a scalar loss."""


def train_params(params: Iterable[nn.Parameter], loss_fn: LossFn, *, steps: int, lr: float) -> list[float]:
    """Minimise ``loss_fn`` over ``params`` with AdamW (no weight decay) for ``steps``; returns the losses.

    A non-finite loss stops training with a :class:`ToolError` (the usual causes: too high a learning rate, NaNs
    in the data).
    """
    trainable = [p for p in params if p.requires_grad]
    if not trainable:
        raise ToolError("nothing to train: no parameter requires a gradient", hint="this is a bug in the tool")
    if steps <= 0:
        return []
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.0)
    losses: list[float] = []
    for step in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(step)
        if not torch.isfinite(loss):
            raise ToolError(
                f"the training loss became {float(loss.detach())} at step {step}", hint="lower lr; check the data"
            )
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses
