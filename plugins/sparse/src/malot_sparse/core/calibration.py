"""Calibration: the expected calibration error (ECE) of predicted class probabilities (Guo et al., 2017).

``ECE = Σ_b (|B_b| / n) · |acc(B_b) − conf(B_b)|`` over equal-width confidence bins ``B_b`` of the top-class
probability (bins are ``(lo, hi]``; confidence 0 falls in the first bin).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from malot.errors import ToolError

if TYPE_CHECKING:
    import torch

__all__ = ["expected_calibration_error"]


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> float:
    """ECE of ``probs`` (``(n, classes)``, rows summing to 1) against integer ``labels`` with ``bins`` bins."""
    import torch

    if probs.dim() != 2 or labels.dim() != 1 or probs.shape[0] != labels.shape[0] or probs.shape[0] == 0:
        raise ToolError(f"ECE needs (n, classes) probabilities and (n,) labels, got {probs.shape}, {labels.shape}")
    if bins < 1:
        raise ToolError(f"ECE needs at least one bin, got {bins}")
    if not torch.isfinite(probs).all():
        raise ToolError("ECE got NaN or inf probabilities")
    confidence, predicted = probs.max(dim=1)
    correct = (predicted == labels).double()
    index = (torch.ceil(confidence.double() * bins).long() - 1).clamp(0, bins - 1)
    total = 0.0
    n = probs.shape[0]
    for b in range(bins):
        member = index == b
        count = int(member.sum())
        if count:
            total += count / n * abs(float(correct[member].mean()) - float(confidence[member].double().mean()))
    return total
