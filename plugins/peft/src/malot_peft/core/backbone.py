"""Layer-by-layer access to a frozen backbone, for the side-network methods (LST, UniPT, SHERL).

A :class:`LayeredBackbone` exposes ``embed(ids)``, ``layer(i, h)`` and ``readout(h)``, so a method can run the
backbone under ``torch.no_grad()`` to collect every layer's output, and later push a modified final state (or, for
SHERL, a modified intermediate state through the last layers) into the frozen readout. Two implementations: our
:class:`~malot_peft.core.tiny.TinyTransformer`, and Hugging Face decoder-only LMs laid out like Llama
(``model.model.{embed_tokens, layers, norm, rotary_emb}`` and ``lm_head``; Llama, Qwen2, Mistral, ...).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from malot.errors import ToolError
from malot_peft.core.tiny import TinyTransformer

__all__ = [
    "GradientProbe",
    "HFDecoderBackbone",
    "LayeredBackbone",
    "TinyBackbone",
    "frozen_states",
    "layered",
    "snapshot",
    "unchanged",
]


class LayeredBackbone(ABC):
    """A frozen model seen as ``readout(layer_{L-1}(... layer_0(embed(ids))))`` (subclasses: one per model layout)."""

    module: nn.Module
    num_layers: int
    hidden_size: int
    causal: bool

    @abstractmethod
    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """Input embeddings ``(B, n, d)``; also prepares per-batch state (positions) for :meth:`layer`."""

    @abstractmethod
    def layer(self, index: int, h: torch.Tensor) -> torch.Tensor:
        """Apply layer ``index`` to ``h`` (same shape)."""

    @abstractmethod
    def readout(self, h: torch.Tensor) -> torch.Tensor:
        """Final norm and head on the last hidden state."""

    @abstractmethod
    def layer_module(self, index: int) -> nn.Module:
        """The ``nn.Module`` of layer ``index`` (for hooks)."""


class TinyBackbone(LayeredBackbone):
    """Layered view of a :class:`TinyTransformer`."""

    def __init__(self, model: TinyTransformer) -> None:
        self.module = model
        self.model = model
        self.num_layers = len(model.blocks)
        self.hidden_size = model.hidden_size
        self.causal = model.task == "lm"

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """Token + position embeddings."""
        return self.model.embed_tokens(ids)

    def layer(self, index: int, h: torch.Tensor) -> torch.Tensor:
        """One pre-LN block."""
        out: torch.Tensor = self.model.blocks[index](h)
        return out

    def readout(self, h: torch.Tensor) -> torch.Tensor:
        """Final norm and head."""
        return self.model.readout(h)

    def layer_module(self, index: int) -> nn.Module:
        """Block ``index``."""
        block: nn.Module = self.model.blocks[index]
        return block


class HFDecoderBackbone(LayeredBackbone):
    """Layered view of a Hugging Face decoder-only LM with Llama's layout (causal attention, rotary positions)."""

    def __init__(self, model: nn.Module) -> None:
        inner = getattr(model, "model", None)
        needed = ("embed_tokens", "layers", "norm", "rotary_emb")
        if inner is None or not all(hasattr(inner, n) for n in needed) or not hasattr(model, "lm_head"):
            raise ToolError(
                f"{type(model).__name__} is not laid out like Llama (model.embed_tokens/layers/norm/rotary_emb)",
                hint="use a Llama-style decoder (Llama, Qwen2, Mistral, ...)",
            )
        self.module = model
        self.inner: Any = inner
        self.head: nn.Module = model.lm_head  # type: ignore[assignment]
        self.num_layers = len(inner.layers)
        self.hidden_size = int(inner.embed_tokens.embedding_dim)
        self.causal = True
        self._positions: Any = None

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """Token embeddings; computes the rotary position embeddings for this sequence length."""
        h: torch.Tensor = self.inner.embed_tokens(ids)
        position_ids = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0)
        self._positions = self.inner.rotary_emb(h, position_ids=position_ids)
        return h

    def layer(self, index: int, h: torch.Tensor) -> torch.Tensor:
        """One decoder layer with causal attention (no padding mask: pad on the right and mask the loss)."""
        if self._positions is None:
            raise ToolError("call embed() before layer()", hint="this is a bug in the calling tool")
        out = self.inner.layers[index](h, attention_mask=None, position_embeddings=self._positions)
        result: torch.Tensor = out[0] if isinstance(out, tuple) else out
        return result

    def readout(self, h: torch.Tensor) -> torch.Tensor:
        """Final RMSNorm and LM head."""
        out: torch.Tensor = self.head(self.inner.norm(h))
        return out

    def layer_module(self, index: int) -> nn.Module:
        """Decoder layer ``index``."""
        layer: nn.Module = self.inner.layers[index]
        return layer


def layered(model: nn.Module) -> LayeredBackbone:
    """The layered view of ``model`` (a :class:`TinyTransformer` or a Llama-style Hugging Face LM)."""
    if isinstance(model, TinyTransformer):
        return TinyBackbone(model)
    return HFDecoderBackbone(model)


def frozen_states(backbone: LayeredBackbone, ids: torch.Tensor, upto: int | None = None) -> list[torch.Tensor]:
    """Run the backbone without autograd; return ``[embed, out_0, ..., out_{upto-1}]`` (default: every layer).

    Nothing computed here is recorded for backward, so no gradient can reach the backbone through these states.
    """
    last = backbone.num_layers if upto is None else upto
    with torch.no_grad():
        h = backbone.embed(ids)
        states = [h]
        for i in range(last):
            h = backbone.layer(i, h)
            states.append(h)
    return states


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of every parameter and buffer of ``module``."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def unchanged(module: nn.Module, before: dict[str, torch.Tensor]) -> bool:
    """Whether every tensor of ``module`` is bit-identical to ``before`` (same names, dtypes and values)."""
    now = module.state_dict()
    if set(now) != set(before):
        return False
    return all(now[k].dtype == before[k].dtype and torch.equal(now[k], before[k]) for k in before)


@dataclass
class GradientProbe:
    """Records any gradient that reaches a backbone: parameter hooks and module backward hooks.

    ``param_hits`` names backbone parameters whose gradient hook fired; ``module_hits`` names backbone layers a
    backward pass went through. A method with no backbone backprop leaves both empty.
    """

    param_hits: set[str] = field(default_factory=set)
    module_hits: set[str] = field(default_factory=set)

    @contextmanager
    def watch(self, module: nn.Module, layers: dict[str, nn.Module]) -> Iterator[GradientProbe]:
        """Hook every parameter of ``module`` that requires grad, and every module in ``layers``."""
        handles: list[Any] = []
        for name, param in module.named_parameters():
            if param.requires_grad:
                handles.append(param.register_hook(lambda g, n=name: self._param(n, g)))  # type: ignore[no-untyped-call]
        for name, layer in layers.items():
            handles.append(layer.register_full_backward_hook(self._module_hook(name)))
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()

    def _param(self, name: str, grad: torch.Tensor) -> None:
        self.param_hits.add(name)

    def _module_hook(self, name: str) -> Any:
        def hook(module: nn.Module, grad_in: Any, grad_out: Any) -> None:
            self.module_hits.add(name)

        return hook

    @property
    def clean(self) -> bool:
        """True when no gradient reached the backbone."""
        return not self.param_hits and not self.module_hits
