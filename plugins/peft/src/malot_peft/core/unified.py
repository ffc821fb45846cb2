"""The unified view of parameter-efficient tuning (He et al., ICLR 2022): ``h ← h + s·f(x W_down) W_up``.

Every method the paper unifies adds a *modification* ``Δh = s·f(x W_down) W_up`` to some hidden state ``h``. The
design dimensions are the function ``f`` (identity for LoRA, ReLU for adapters), the insertion form (``sequential``:
``x`` is the hidden state being modified, as in Houlsby/Pfeiffer adapters; ``parallel``: ``x`` is the input of the
modified sublayer, as in LoRA and the parallel adapter), the modified representation (attention or FFN) and the
scale ``s``. Prefix tuning is the gated parallel form of Eq. (7):

    Attn(q, [P_k; K], [P_v; V]) = (1 − λ(q))·Attn(q, K, V) + λ(q)·softmax(q P_kᵀ) P_v,
    λ(q) = Σ_i exp(q·P_k,i) / (Σ_i exp(q·P_k,i) + Σ_j exp(q·K_j)).

This module holds the modification (:class:`UnifiedDelta`), the two insertion wrappers, the prefix identity and the
closed-form trainable-parameter counts.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from malot.errors import ToolError

__all__ = [
    "ActivationName",
    "DeltaWrapped",
    "Insertion",
    "UnifiedDelta",
    "delta_param_count",
    "gated_prefix_attention",
    "insert_delta",
    "make_delta",
    "prefix_attention",
    "prefix_param_count",
]

ActivationName = Literal["identity", "relu", "tanh", "gelu"]
Insertion = Literal["parallel", "sequential"]


def _activation(name: str) -> nn.Module:
    table: dict[str, type[nn.Module]] = {
        "identity": torch.nn.Identity,
        "relu": torch.nn.ReLU,
        "tanh": torch.nn.Tanh,
        "gelu": torch.nn.GELU,
    }
    if name not in table:
        raise ToolError(f"unknown activation {name!r}", hint=f"use one of {sorted(table)}")
    return table[name]()


def delta_param_count(d_in: int, d_out: int, r: int, bias: bool) -> int:
    """Closed form: ``r·(d_in + d_out)`` weights, plus ``r + d_out`` biases when ``bias``."""
    return r * (d_in + d_out) + ((r + d_out) if bias else 0)


def prefix_param_count(prefix_len: int, num_layers: int, kv_dim: int) -> int:
    """Closed form of prefix tuning without reparametrisation: ``l · L · 2 · d_kv`` (a key and a value per layer)."""
    return prefix_len * num_layers * 2 * kv_dim


class UnifiedDelta(nn.Module):
    """The modification ``Δ(x) = s·f(x W_down + b_down) W_up + b_up`` (``W_up`` zero at init by default).

    With ``zero_up`` the wrapped model starts out exactly equal to the backbone (the paper's initialisation).
    """

    def __init__(
        self,
        d_in: int,
        d_out: int,
        r: int,
        *,
        fn: str = "relu",
        scale: float = 1.0,
        bias: bool = True,
        zero_up: bool = True,
    ) -> None:
        if r <= 0 or d_in <= 0 or d_out <= 0:
            raise ToolError(f"bottleneck sizes must be positive (d_in={d_in}, d_out={d_out}, r={r})")
        super().__init__()
        self.down = nn.Linear(d_in, r, bias=bias)
        self.up = nn.Linear(r, d_out, bias=bias)
        self.fn = _activation(fn)
        self.scale = float(scale)
        if zero_up:
            nn.init.zeros_(self.up.weight)
            if self.up.bias is not None:
                nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The modification for input ``x`` (last dimension ``d_in``)."""
        out: torch.Tensor = self.up(self.fn(self.down(x))) * self.scale
        return out


def make_delta(
    d_in: int, d_out: int, r: int, *, fn: str = "relu", scale: float = 1.0, bias: bool = True, zero_up: bool = True
) -> UnifiedDelta:
    """Build a :class:`UnifiedDelta` (kept as a function for call sites that read better with one)."""
    return UnifiedDelta(d_in, d_out, r, fn=fn, scale=scale, bias=bias, zero_up=zero_up)


def _first_input(args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor:
    if args:
        first: torch.Tensor = args[0]
        return first
    if "hidden_states" in kwargs:
        hidden: torch.Tensor = kwargs["hidden_states"]
        return hidden
    if "x" in kwargs:
        x: torch.Tensor = kwargs["x"]
        return x
    raise ToolError("cannot find the hidden-state input of the wrapped module", hint="target a module taking h first")


class DeltaWrapped(nn.Module):
    """A frozen module with a unified-view modification added to its output (see :func:`insert_delta`)."""

    def __init__(self, base: nn.Module, delta: nn.Module, insertion: Insertion) -> None:
        if insertion not in ("parallel", "sequential"):
            raise ToolError(f"unknown insertion {insertion!r}", hint="use 'parallel' or 'sequential'")
        super().__init__()
        self.base = base
        self.delta = delta
        self.insertion = insertion

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Run the base module, then add the modification."""
        out = self.base(*args, **kwargs)
        h = out[0] if isinstance(out, tuple) else out
        source = _first_input(args, kwargs) if self.insertion == "parallel" else h
        new = h + self.delta(source)
        return (new, *out[1:]) if isinstance(out, tuple) else new


def insert_delta(module: nn.Module, delta: nn.Module, insertion: Insertion) -> DeltaWrapped:
    """Wrap ``module`` so its output ``h`` becomes ``h + Δ(x)`` (parallel) or ``h + Δ(h)`` (sequential).

    ``x`` is the module's first input (or ``hidden_states``); a tuple output has the modification added to its
    first element (attention blocks return ``(h, weights)``).
    """
    return DeltaWrapped(module, delta, insertion)


def prefix_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, p_k: torch.Tensor, p_v: torch.Tensor
) -> torch.Tensor:
    """Prefix tuning as the paper defines it: attention of ``q`` over the concatenated ``[P_k; K]``, ``[P_v; V]``.

    Shapes: ``q (..., n, d)``, ``k, v (..., m, d)``, ``p_k, p_v (l, d)`` (broadcast over the leading dimensions).
    """
    lead = k.shape[:-2]
    keys = torch.cat([p_k.expand(*lead, *p_k.shape), k], dim=-2)
    values = torch.cat([p_v.expand(*lead, *p_v.shape), v], dim=-2)
    scores = q @ keys.transpose(-1, -2) / q.shape[-1] ** 0.5
    out: torch.Tensor = torch.softmax(scores, dim=-1) @ values
    return out


def gated_prefix_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, p_k: torch.Tensor, p_v: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. (7): ``(1 − λ)·Attn(q, K, V) + λ·softmax(q P_kᵀ) P_v``; returns the output and the gate ``λ``.

    ``softmax(q P_kᵀ) P_v`` is the unified form ``f(x W_down) W_up`` with ``W_down = P_kᵀ``, ``W_up = P_v`` and
    ``f = softmax``, inserted in parallel with a gate instead of a fixed scale.
    """
    scale = q.shape[-1] ** 0.5
    s_prefix = q @ p_k.transpose(-1, -2) / scale
    s_self = q @ k.transpose(-1, -2) / scale
    top = torch.maximum(s_prefix.amax(-1, keepdim=True), s_self.amax(-1, keepdim=True))
    mass_prefix = torch.exp(s_prefix - top).sum(-1, keepdim=True)
    mass_self = torch.exp(s_self - top).sum(-1, keepdim=True)
    gate = mass_prefix / (mass_prefix + mass_self)
    attn = torch.softmax(s_self, dim=-1) @ v
    delta = torch.softmax(s_prefix, dim=-1) @ p_v
    return (1 - gate) * attn + gate * delta, gate
