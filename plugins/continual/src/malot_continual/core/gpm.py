"""Gradient Projection Memory (Saha et al., ICLR 2021): per-layer input-space bases and gradient projection.

For a linear layer ``W`` (``[out, in]``) the inputs ``R`` (``[in, n]``) a task fed it span a subspace; GPM keeps an
orthonormal basis ``M`` of it and trains later tasks with ``g ← g − g M Mᵀ``, so the layer's outputs on the old
inputs do not change. The basis of task ``t`` is picked from the SVD of the part of ``R`` the stored bases do not
already explain, with the energy criterion ``‖Mᵀ R‖² + ‖R̂_k‖² ≥ ε_th ‖R‖²`` (the paper's Eq. 8-9). Bases of
successive tasks are therefore mutually orthogonal, which lets CUBER act on one task's subspace at a time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from malot.errors import ToolError

if TYPE_CHECKING:
    import torch

__all__ = ["new_basis", "project_out", "stack_bases"]


def stack_bases(bases: list[torch.Tensor], dim: int) -> torch.Tensor:
    """The columns of every basis side by side (``[dim, total]``; ``[dim, 0]`` when there are none)."""
    import torch

    return torch.cat(bases, dim=1) if bases else torch.zeros(dim, 0)


def new_basis(inputs: torch.Tensor, existing: list[torch.Tensor], threshold: float) -> torch.Tensor:
    """The basis columns task ``inputs`` (``[n, in]`` rows) adds to a layer whose memory holds ``existing`` bases.

    Returns ``[in, k]`` orthonormal columns orthogonal to every existing column (``k`` may be 0).
    """
    import torch

    if not 0.0 < threshold <= 1.0:
        raise ToolError(f"GPM energy threshold must be in (0, 1], got {threshold}")
    r = inputs.detach().double().T  # [in, n]
    dim = r.shape[0]
    m = stack_bases(existing, dim).double()
    total = float((r**2).sum())
    if total == 0.0:
        return torch.zeros(dim, 0)
    explained = float(((m.T @ r) ** 2).sum()) if m.shape[1] else 0.0
    residual = r - m @ (m.T @ r) if m.shape[1] else r
    u, s, _ = torch.linalg.svd(residual, full_matrices=False)
    energy = s**2
    k = 0
    acc = explained
    while k < len(energy) and acc < threshold * total - 1e-12:
        acc += float(energy[k])
        k += 1
    basis = u[:, :k]
    if m.shape[1] and k:  # numerical clean-up: keep exactly orthogonal to the stored columns
        basis = basis - m @ (m.T @ basis)
        basis, _ = torch.linalg.qr(basis)
    out: torch.Tensor = basis.float()
    return out


def project_out(grad: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """``g − g B Bᵀ`` for a weight gradient ``g`` (``[out, in]``) and input-space basis ``B`` (``[in, k]``)."""
    if basis.shape[1] == 0:
        return grad
    out: torch.Tensor = grad - (grad @ basis) @ basis.T
    return out
