"""Clustering helpers for novel-class discovery: Sinkhorn–Knopp balanced pseudo-labels and Hungarian accuracy."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["cluster_accuracy", "sinkhorn"]


def sinkhorn(logits: torch.Tensor, epsilon: float = 0.05, iterations: int = 3) -> torch.Tensor:
    """Balanced soft assignments ``(N, K)`` of ``N`` samples to ``K`` clusters (rows sum to 1), as in SwAV/UNO."""
    import torch

    with torch.no_grad():
        q = torch.exp((logits - logits.max()) / epsilon).T  # K × N
        q = q / q.sum()
        k, n = q.shape
        for _ in range(iterations):
            q = q / q.sum(dim=1, keepdim=True).clamp_min(1e-12) / k
            q = q / q.sum(dim=0, keepdim=True).clamp_min(1e-12) / n
        return (q * n).T


def cluster_accuracy(predicted: torch.Tensor, truth: torch.Tensor) -> float:
    """Accuracy under the best one-to-one matching of predicted clusters to true classes (Hungarian algorithm)."""
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    p, t = predicted.numpy().astype(int), truth.numpy().astype(int)
    size = max(p.max(initial=0), t.max(initial=0)) + 1
    counts = np.zeros((size, size), dtype=np.int64)
    np.add.at(counts, (p, t), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum()) / max(len(p), 1)
