"""Small torch training helpers shared by the tools: seeding, an Adam loop, freezing and parameter snapshots."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["adam_fit", "freeze_except", "parameter_snapshot", "seed_all"]


def seed_all(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a torch generator seeded the same way for data order."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def adam_fit(
    params: Iterable[torch.Tensor],
    loss_fn: Callable[[int], torch.Tensor],
    *,
    steps: int,
    lr: float,
    weight_decay: float = 0.0,
) -> list[float]:
    """Minimise ``loss_fn(step)`` over ``params`` with Adam for ``steps`` steps; returns the per-step losses."""
    import torch

    trainable = [p for p in params if p.requires_grad]
    if not trainable or steps <= 0:
        return []
    optimizer = torch.optim.Adam(trainable, lr=lr, weight_decay=weight_decay)
    losses: list[float] = []
    for step in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(step)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


def freeze_except(model: nn.Module, trainable: Callable[[str], bool]) -> list[str]:
    """Set ``requires_grad`` to ``trainable(name)`` for every parameter; returns the names left trainable."""
    names = []
    for name, param in model.named_parameters():
        keep = trainable(name)
        param.requires_grad_(keep)
        if keep:
            names.append(name)
    return names


def parameter_snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of every parameter (to prove later which ones an adaptation step changed)."""
    return {name: param.detach().clone() for name, param in model.named_parameters()}
