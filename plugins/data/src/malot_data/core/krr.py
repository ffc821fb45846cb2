"""Differentiable kernel ridge regression with a linear kernel on features (torch), for bilevel distillation.

``krr_predict(F_s, Y_s, F_q, λ) = F_q F_sᵀ (F_s F_sᵀ + λI)⁻¹ Y_s`` — the same predictor as scikit-learn's
``KernelRidge(kernel="linear", alpha=λ)`` fitted on ``(F_s, Y_s)`` (the tests check the two agree), written in torch
so gradients flow back into the support set ``(F_s, Y_s)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["krr_predict"]


def krr_predict(support: torch.Tensor, targets: torch.Tensor, query: torch.Tensor, lam: float) -> torch.Tensor:
    """Linear-kernel ridge predictions at ``query`` from ``(support, targets)`` (``λ`` the ridge)."""
    import torch

    gram = support @ support.T
    eye = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
    coef = torch.linalg.solve(gram + lam * eye, targets)
    out: torch.Tensor = (query @ support.T) @ coef
    return out
