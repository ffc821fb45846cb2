"""torch modules shared by the continual tools (imported only by code that already needs torch)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["Bt2Head", "MultiHeadMLP", "SmallVAE"]


class MultiHeadMLP(nn.Module):
    """ReLU MLP body (``body.0``, ``body.2``, ... linear layers) and ``heads`` linear heads of ``n_classes`` outputs.

    ``features(x)`` is the body's output (the representation); ``forward(x, head=i)`` the logits of head ``i``.
    Linear layers are bias-free in the body so gradient projection methods (GPM, CUBER) act on the whole layer.
    """

    def __init__(self, in_dim: int, hidden: list[int], n_classes: int, *, heads: int = 1) -> None:
        super().__init__()
        if in_dim < 1 or n_classes < 1 or heads < 1 or not hidden or min(hidden) < 1:
            raise ValueError("MultiHeadMLP needs positive in_dim, n_classes, heads and hidden sizes")
        layers: list[nn.Module] = []
        width = in_dim
        for size in hidden:
            layers += [nn.Linear(width, size, bias=False), nn.ReLU()]
            width = size
        self.body = nn.Sequential(*layers)
        self.heads = nn.ModuleList([nn.Linear(width, n_classes) for _ in range(heads)])
        self.in_dim, self.hidden, self.n_classes = in_dim, list(hidden), n_classes

    def config(self) -> dict[str, Any]:
        """The constructor arguments, for saving."""
        return {"in_dim": self.in_dim, "hidden": self.hidden, "n_classes": self.n_classes, "heads": len(self.heads)}

    def body_linears(self) -> list[nn.Linear]:
        """The body's linear layers, input side first."""
        return [m for m in self.body if isinstance(m, nn.Linear)]

    def head_linear(self, index: int = 0) -> nn.Linear:
        """Head ``index`` as a linear layer."""
        head = self.heads[index]
        assert isinstance(head, nn.Linear)
        return head

    def layer_inputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The input of every body linear layer for the rows ``x`` (what GPM builds its bases from)."""
        inputs = []
        h = x
        for module in self.body:
            if isinstance(module, nn.Linear):
                inputs.append(h)
            h = module(h)
        return inputs

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The body's output."""
        out: torch.Tensor = self.body(x)
        return out

    def forward(self, x: torch.Tensor, head: int = 0) -> torch.Tensor:
        """Logits of head ``head``."""
        out: torch.Tensor = self.heads[head](self.body(x))
        return out


class SmallVAE(nn.Module):
    """A two-layer Gaussian VAE over representation rows: ``enc`` gives ``[μ, log σ²]``, ``dec`` maps ``z`` back."""

    def __init__(self, dim: int, latent: int) -> None:
        super().__init__()
        width = max(2 * latent, dim)
        self.enc = nn.Sequential(nn.Linear(dim, width), nn.ReLU(), nn.Linear(width, 2 * latent))
        self.dec = nn.Sequential(nn.Linear(latent, width), nn.ReLU(), nn.Linear(width, dim))


class Bt2Head(nn.Module):
    """BT²'s transformation ``x ↦ B·[x; tanh(W x + b)]`` with ``B`` orthogonal (torch's ``orthogonal`` parametrisation).

    ``d_new``: the new embedding's width; ``extra``: the added dimensions ψ; ``d_old``: how many leading output
    coordinates must be compatible with the old index.
    """

    def __init__(self, d_new: int, d_old: int, extra: int) -> None:
        super().__init__()
        from torch.nn.utils.parametrizations import orthogonal

        self.d_new, self.d_old, self.extra = d_new, d_old, extra
        self.expand = nn.Linear(d_new, max(extra, 1))
        basis = nn.Linear(d_new + extra, d_new + extra, bias=False)
        nn.init.eye_(basis.weight)
        orthogonal(basis, orthogonal_map="cayley")  # basis.weight becomes an orthogonal matrix (Cayley map: fast)
        self.basis = basis

    def widen(self, phi: torch.Tensor) -> torch.Tensor:
        """``[φ; ψ(φ)]``."""
        if self.extra == 0:
            return phi
        return torch.cat([phi, torch.tanh(self.expand(phi))], dim=-1)

    def basis_matrix(self) -> torch.Tensor:
        """The current orthonormal ``B``."""
        with torch.no_grad():
            weight: torch.Tensor = self.basis.weight.detach().clone()
        return weight

    def forward(self, phi: torch.Tensor) -> torch.Tensor:
        """``B·[φ; ψ(φ)]``."""
        out: torch.Tensor = self.basis(self.widen(phi))
        return out
