"""Seeded synthetic tasks for the distill plugin's tests and claim benchmarks (tiny, CPU-friendly).

:func:`mixture_task` draws a Gaussian-mixture classification task: each class owns ``modes`` cluster centres;
``shift`` moves every centre by a shared offset (a domain shift). :func:`train_ce` trains a classifier with plain
cross-entropy (the usual baseline everywhere in this plugin).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from malot_distill.core.train import batches, fit

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["mixture_centres", "mixture_task", "sample_mixture", "train_ce"]


def mixture_centres(classes: int, modes: int, dim: int, seed: int, spread: float = 3.0) -> torch.Tensor:
    """``(classes, modes, dim)`` random cluster centres."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    return torch.randn(classes, modes, dim, generator=gen) * spread


def sample_mixture(
    centres: torch.Tensor,
    n: int,
    seed: int,
    *,
    noise: float = 1.0,
    class_weights: torch.Tensor | None = None,
    shift: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` samples ``(x, y, mode)``; classes drawn from ``class_weights`` (uniform if None), modes uniformly."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    classes, modes, dim = centres.shape
    weights = class_weights if class_weights is not None else torch.ones(classes)
    y = torch.multinomial(weights.float(), n, replacement=True, generator=gen)
    mode = torch.randint(modes, (n,), generator=gen)
    x = centres[y, mode] + noise * torch.randn(n, dim, generator=gen)
    if shift is not None:
        x = x + shift
    return x, y, mode


def mixture_task(
    classes: int, modes: int, dim: int, n: int, seed: int, *, noise: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """A fresh mixture task: ``n`` samples ``(x, y)``."""
    x, y, _ = sample_mixture(mixture_centres(classes, modes, dim, seed), n, seed + 1, noise=noise)
    return x, y


def train_ce(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, steps: int, lr: float = 1e-2, batch: int = 64, seed: int = 0
) -> list[float]:
    """Train ``model`` with cross-entropy on ``(x, y)`` for ``steps`` Adam steps."""
    import torch.nn.functional as F

    order = batches(x.shape[0], batch, steps, seed)
    model.train()
    losses = fit(model.parameters(), lambda s: F.cross_entropy(model(x[order[s]]), y[order[s]]), steps=steps, lr=lr)
    model.eval()
    return losses
