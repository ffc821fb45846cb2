"""Small synthetic task streams the tests and claim benchmarks build (Gaussian blobs, shared-structure tasks)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from malot_continual.core.data import LabelledData

__all__ = ["blobs", "linear_teacher_task"]


def blobs(
    centers: torch.Tensor, n_per_class: int, *, noise: float = 1.0, seed: int = 0, labels: list[int] | None = None
) -> LabelledData:
    """``n_per_class`` Gaussian points around each row of ``centers``; label ``labels[i]`` (default ``i``)."""
    import torch

    from malot_continual.core.data import LabelledData

    g = torch.Generator().manual_seed(seed)
    k, d = centers.shape
    names = labels if labels is not None else list(range(k))
    x = centers.repeat_interleave(n_per_class, 0) + noise * torch.randn(k * n_per_class, d, generator=g)
    y = torch.tensor(names, dtype=torch.long).repeat_interleave(n_per_class)
    return LabelledData(x.float(), y)


def linear_teacher_task(
    projection: torch.Tensor, teacher: torch.Tensor, n: int, *, seed: int = 0, noise: float = 0.0
) -> LabelledData:
    """Inputs ``x = z @ projection`` for standard normal ``z``; label = arg-max of ``z @ teacher`` (+ label noise)."""
    import torch

    from malot_continual.core.data import LabelledData

    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, projection.shape[0], generator=g)
    logits = z @ teacher + noise * torch.randn(n, teacher.shape[1], generator=g)
    return LabelledData((z @ projection).float(), logits.argmax(-1))
