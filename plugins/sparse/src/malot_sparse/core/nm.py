"""N:M semi-structured sparsity: candidate masks, grouping a weight into M-groups, priors and checks.

A weight ``W`` of shape ``(out, in)`` is cut into groups of ``M`` consecutive entries along the input dimension
(the layout NVIDIA's 2:4 sparse tensor cores and vLLM's sparse kernels use). An N:M mask keeps exactly ``N`` entries
of every group; the ``C(M, N)`` ways to do so are the *candidate masks* (6 for 2:4).
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING

from malot.errors import ToolError

if TYPE_CHECKING:
    import torch

__all__ = [
    "candidate_masks",
    "check_nm",
    "group_weight",
    "magnitude_nm_mask",
    "mask_from_choice",
    "prior_choice",
    "saliency_nm_mask",
    "sparsegpt_saliency",
    "ungroup",
]


def candidate_masks(n: int, m: int) -> torch.Tensor:
    """All ``C(m, n)`` binary vectors of length ``m`` with exactly ``n`` ones, as a float ``(C, m)`` tensor."""
    import torch

    if not 0 < n <= m:
        raise ToolError(f"N:M sparsity needs 0 < N <= M, got N={n}, M={m}", hint="use N=2, M=4 for 2:4 sparsity")
    if math.comb(m, n) > 4096:
        raise ToolError(f"C({m},{n}) candidate masks are too many", hint="use a small M such as 4 or 8")
    rows = []
    for keep in itertools.combinations(range(m), n):
        row = [0.0] * m
        for i in keep:
            row[i] = 1.0
        rows.append(row)
    return torch.tensor(rows)


def group_weight(weight: torch.Tensor, m: int) -> torch.Tensor:
    """View a 2-D weight ``(out, in)`` as ``(out * in / m, m)`` groups of ``m`` consecutive input entries."""
    if weight.dim() != 2:
        raise ToolError(f"N:M masks apply to 2-D weights, got shape {tuple(weight.shape)}")
    if weight.shape[1] % m:
        raise ToolError(
            f"the input dimension {weight.shape[1]} is not a multiple of M={m}",
            hint="leave this layer dense (exclude it) or choose an M that divides it",
        )
    return weight.reshape(-1, m)


def ungroup(groups: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Inverse of :func:`group_weight`."""
    return groups.reshape(shape)


def mask_from_choice(choice: torch.Tensor, candidates: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """The boolean mask of a weight given the chosen candidate index of each M-group."""
    return ungroup(candidates[choice], shape).bool()


def saliency_nm_mask(saliency: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """The N:M mask keeping, in every M-group, the ``n`` entries with the largest ``saliency`` (boolean)."""
    import torch

    groups = group_weight(saliency, m)
    top = groups.topk(n, dim=1).indices
    mask = torch.zeros_like(groups, dtype=torch.bool)
    mask.scatter_(1, top, True)
    return ungroup(mask, tuple(saliency.shape))


def magnitude_nm_mask(weight: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """The magnitude prior: keep the ``n`` largest ``|w|`` of every M-group."""
    return saliency_nm_mask(weight.detach().abs(), n, m)


def sparsegpt_saliency(weight: torch.Tensor, inputs: torch.Tensor, damp: float = 0.01) -> torch.Tensor:
    """SparseGPT/OBS saliency ``w_ij² / [H⁻¹]_jj²`` with ``H = XᵀX`` from calibration inputs ``(tokens, in)``.

    This is the one-shot selection criterion of SparseGPT (Frantar & Alistarh, 2023) without its weight update,
    which MaskLLM uses as a mask prior (weights stay frozen there). ``damp`` adds ``damp·mean(diag H)`` to the
    diagonal so ``H`` is invertible.
    """
    import torch

    x = inputs.detach().double().reshape(-1, inputs.shape[-1])
    if x.shape[1] != weight.shape[1]:
        raise ToolError(f"calibration inputs have {x.shape[1]} features, the weight expects {weight.shape[1]}")
    hessian = x.T @ x
    hessian += torch.eye(hessian.shape[0], dtype=hessian.dtype) * damp * float(hessian.diagonal().mean() + 1e-12)
    inverse_diag = torch.linalg.inv(hessian).diagonal().float()
    saliency: torch.Tensor = weight.detach().float().pow(2) / inverse_diag.unsqueeze(0).pow(2)
    return saliency


def prior_choice(prior_mask: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """Similarity of every M-group's prior mask to each candidate: ``(groups, C)`` counts of shared kept entries."""
    m = candidates.shape[1]
    groups = group_weight(prior_mask.float(), m)
    return groups @ candidates.T


def check_nm(mask: torch.Tensor, n: int, m: int) -> bool:
    """Whether every M-group of ``mask`` holds exactly ``n`` non-zeros."""
    groups = group_weight(mask, m)
    return bool(((groups != 0).sum(dim=1) == n).all())
