"""A small pre-LN transformer whose attention supports prefix key/value vectors, for tests and claim benchmarks.

Module names follow the usual layout so the unified-view targets read the same as on Hugging Face models:
``blocks.{i}.attn.{q,k,v,o}`` (linear maps), ``blocks.{i}.ffn`` (the feed-forward sublayer), ``norm`` and ``head``.
``task="classify"`` mean-pools the final states into ``head``; ``task="lm"`` applies ``head`` at every position
(with causal attention).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

__all__ = ["TinyAttention", "TinyBlock", "TinyTransformer"]


class TinyAttention(nn.Module):
    """Multi-head self-attention with optional learnable prefix keys/values per head (prefix tuning)."""

    def __init__(self, d: int, heads: int, causal: bool) -> None:
        super().__init__()
        if d % heads:
            raise ValueError(f"hidden size {d} is not divisible by {heads} heads")
        self.d, self.heads, self.causal = d, heads, causal
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        self.v = nn.Linear(d, d)
        self.o = nn.Linear(d, d)
        self.prefix_k: nn.Parameter | None = None
        self.prefix_v: nn.Parameter | None = None

    def add_prefix(self, length: int, std: float = 0.02) -> None:
        """Add ``length`` learnable prefix keys and values (``2·length·d`` parameters)."""
        self.prefix_k = nn.Parameter(torch.randn(length, self.d) * std)
        self.prefix_v = nn.Parameter(torch.randn(length, self.d) * std)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.heads, self.d // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attention of every position over the prefix (if any) and the (causally visible) positions."""
        b, n, _ = x.shape
        q, k, v = self._split(self.q(x)), self._split(self.k(x)), self._split(self.v(x))
        mask = None
        if self.causal:
            mask = torch.ones(n, n, dtype=torch.bool, device=x.device).tril()
        if self.prefix_k is not None and self.prefix_v is not None:
            pk = self._split(self.prefix_k.unsqueeze(0).expand(b, -1, -1))
            pv = self._split(self.prefix_v.unsqueeze(0).expand(b, -1, -1))
            k, v = torch.cat([pk, k], dim=2), torch.cat([pv, v], dim=2)
            if mask is not None:
                mask = torch.cat([torch.ones(n, pk.shape[2], dtype=torch.bool, device=x.device), mask], dim=1)
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        out = out.transpose(1, 2).reshape(b, n, self.d)
        result: torch.Tensor = self.o(out)
        return result


class TinyBlock(nn.Module):
    """Pre-LN block: ``h + attn(ln1(h))``, then ``h + ffn(ln2(h))``."""

    def __init__(self, d: int, heads: int, ffn: int, causal: bool) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.attn = TinyAttention(d, heads, causal)
        self.ln2 = nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, ffn), nn.GELU(), nn.Linear(ffn, d))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """One block."""
        h = h + self.attn(self.ln1(h))
        out: torch.Tensor = h + self.ffn(self.ln2(h))
        return out


class TinyTransformer(nn.Module):
    """Token embedding + learned positions, ``layers`` pre-LN blocks, final LayerNorm and a linear head."""

    def __init__(
        self,
        vocab: int,
        d: int = 32,
        layers: int = 2,
        heads: int = 2,
        ffn: int = 64,
        max_len: int = 64,
        out_dim: int | None = None,
        task: Literal["classify", "lm"] = "classify",
    ) -> None:
        super().__init__()
        self.task = task
        self.embed = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.randn(max_len, d) * 0.02)
        self.blocks = nn.ModuleList(TinyBlock(d, heads, ffn, causal=task == "lm") for _ in range(layers))
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, out_dim if out_dim is not None else vocab)

    @property
    def hidden_size(self) -> int:
        """Width of the hidden states."""
        return int(self.embed.embedding_dim)

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        """Token plus position embeddings, ``(B, n, d)``."""
        out: torch.Tensor = self.embed(ids) + self.pos[: ids.shape[1]]
        return out

    def readout(self, h: torch.Tensor) -> torch.Tensor:
        """Final norm and head (mean-pooled for classification)."""
        h = self.norm(h)
        if self.task == "classify":
            h = h.mean(dim=1)
        out: torch.Tensor = self.head(h)
        return out

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Logits: ``(B, out_dim)`` for classification, ``(B, n, vocab)`` for a language model."""
        h = self.embed_tokens(ids)
        for block in self.blocks:
            h = block(h)
        return self.readout(h)
