"""Tiny torch classifiers the distillation and adaptation tools train: an MLP with an optional BatchNorm layer.

The methods in this plugin are image methods in their papers (ConvNets on CIFAR/ImageNet); here the algorithms are
the papers' and the scale is ours: inputs are flat vectors (an image is flattened), the network a small MLP.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["accuracy", "make_mlp", "penultimate", "set_threads", "soft_cross_entropy", "train_classifier"]


def set_threads(threads: int = 1) -> None:
    """Use ``threads`` torch CPU threads (the tools default to one, like the tests and benchmarks)."""
    import torch

    torch.set_num_threads(max(1, threads))


def make_mlp(dim: int, classes: int, hidden: int = 64, *, batchnorm: bool = False, seed: int = 0) -> nn.Sequential:
    """``Linear → [BatchNorm1d] → ReLU → Linear → ReLU → Linear``: a two-hidden-layer classifier, seeded."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Linear(dim, hidden)]
    if batchnorm:
        layers.append(nn.BatchNorm1d(hidden))
    layers += [nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, classes)]
    return nn.Sequential(*layers)


def penultimate(model: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """The input of the last layer (the features a linear head reads)."""
    out = x
    for layer in list(model)[:-1]:
        out = layer(out)
    return out


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against integer labels (1-D ``targets``) or soft label distributions (2-D ``targets``)."""
    import torch

    if targets.dim() == 1:
        return torch.nn.functional.cross_entropy(logits, targets)
    return -(targets * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()


def train_classifier(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int,
    lr: float = 1e-2,
    batch_size: int = 64,
    seed: int = 0,
    weight_decay: float = 0.0,
) -> list[float]:
    """Adam on (soft) cross-entropy over mini-batches of ``(x, y)``; returns the per-step losses."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    model.train()
    losses: list[float] = []
    n = x.shape[0]
    for _ in range(steps):
        idx = torch.randperm(n, generator=generator)[: min(batch_size, n)]
        loss = soft_cross_entropy(model(x[idx]), y[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        losses.append(float(loss.detach()))
    model.eval()
    return losses


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of ``x`` the model labels as ``y`` (evaluation mode, no gradients)."""
    import torch

    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(dim=1) == y).float().mean())
