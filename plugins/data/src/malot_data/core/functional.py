"""Flat-parameter views of small torch models, for unrolled (differentiable) training in trajectory matching."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["flat_params", "functional_forward"]


def flat_params(model: nn.Module) -> torch.Tensor:
    """All parameters of ``model`` as one detached flat vector (in ``named_parameters`` order)."""
    import torch

    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).clone()


def functional_forward(model: nn.Module, flat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``model(x)`` with its parameters taken from the flat vector ``flat`` (gradients flow into ``flat``)."""
    from torch.func import functional_call

    params = {}
    offset = 0
    for name, p in model.named_parameters():
        size = p.numel()
        params[name] = flat[offset : offset + size].view_as(p)
        offset += size
    out: torch.Tensor = functional_call(model, params, (x,))
    return out
