"""Next-token logits of a Hugging Face causal LM over a growing sequence, reusing its KV cache.

A logits processor sees the whole sequence (``input_ids``) at every step; a side model (a small expert, a small base,
a BTM domain expert) must not re-read it each time. :class:`IncrementalLM` keeps the last sequence it saw and its KV
cache: when the new sequence extends the old one (same batch, same prefix) only the new tokens are fed; anything else
(a new ``generate`` call, a different batch) resets the cache. Left padding is recognised from ``pad_token_id``; when
the padding token is also the BOS token the prompts start with (``pad_is_bos``), the last token of the leading run is
the real BOS and stays visible.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["IncrementalLM"]


class IncrementalLM:
    """Wraps a causal LM to answer "logits of the next token after each row of ``input_ids``" with a KV cache.

    ``forward_passes`` counts model calls and ``tokens_fed`` the tokens they read, so callers can check that decoding
    costs one incremental pass per step.
    """

    def __init__(self, model: Any, *, pad_token_id: int | None = None, pad_is_bos: bool = False) -> None:
        self.model = model
        self.pad_token_id = pad_token_id
        self.pad_is_bos = pad_is_bos
        self.forward_passes = 0
        self.tokens_fed = 0
        self._seen: torch.Tensor | None = None
        self._cache: Any = None

    @property
    def vocab_size(self) -> int:
        """The width of the model's output logits."""
        return int(self.model.config.vocab_size)

    def reset(self) -> None:
        """Drop the cached sequence and KV cache."""
        self._seen = None
        self._cache = None

    def _attention_mask(self, input_ids: torch.Tensor) -> torch.Tensor:
        """1 for real tokens, 0 for left padding (leading ``pad_token_id`` tokens of a row)."""
        if self.pad_token_id is None:
            return torch.ones_like(input_ids)
        is_real = input_ids != self.pad_token_id
        mask = is_real.long().cumsum(dim=-1) > 0
        if self.pad_is_bos:  # the token right before the first real one is the prompt's BOS
            mask[:, :-1] |= mask[:, 1:].clone()
        return mask.long()

    @torch.no_grad()
    def next_logits(self, input_ids: torch.Tensor) -> torch.Tensor:
        """``(batch, vocab)`` logits for the token after each row, feeding only what the cache has not seen."""
        return self.feed(input_ids)[:, -1, :]

    @torch.no_grad()
    def feed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, new, vocab)`` at the positions not seen before (all of them after a reset)."""
        seen = self._seen
        reuse = (
            seen is not None
            and self._cache is not None
            and seen.shape[0] == input_ids.shape[0]
            and seen.shape[1] < input_ids.shape[1]
            and bool(torch.equal(input_ids[:, : seen.shape[1]], seen))
        )
        start = seen.shape[1] if reuse and seen is not None else 0
        if not reuse:
            self._cache = None
        mask = self._attention_mask(input_ids)
        positions = (mask.cumsum(dim=-1) - 1).clamp_min(0)
        new_ids = input_ids[:, start:]
        out = self.model(
            input_ids=new_ids,
            attention_mask=mask,
            position_ids=positions[:, start:],
            past_key_values=self._cache,
            use_cache=True,
        )
        self.forward_passes += 1
        self.tokens_fed += int(new_ids.numel())
        self._cache = out.past_key_values
        self._seen = input_ids.clone()
        logits: torch.Tensor = out.logits
        return logits.float()
