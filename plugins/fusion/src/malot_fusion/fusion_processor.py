"""Dynamic Logits Fusion as a logits processor: ``processor(input_ids, scores) -> fused scores``.

It has the calling convention of Hugging Face's ``LogitsProcessor`` (and of malot's transformers backend hook): the
large model's next-token ``scores`` come in, the small experts and their base read the same ``input_ids`` with their
own KV caches, and the fused scores go out. Put it first in the processor list, before temperature or top-p warpers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from malot_fusion.dynamic_logits_fusion import (
    FusionRecorder,
    FusionStep,
    Objective,
    _kl_from_log_probs,
    _solve_weights,
    fuse_logits,
    kl_from_logits,
    logit_shift,
)
from malot_fusion.incremental import IncrementalLM

__all__ = ["FusionLogitsProcessor"]


class FusionLogitsProcessor:
    """Fuses a large model's logits with small experts' shifts from their shared small base, weights solved per step.

    ``experts`` and ``base`` are Hugging Face causal LMs (or :class:`IncrementalLM` wrappers) that share the large
    model's tokenizer. ``lower``/``upper`` bound every weight; ``objective`` picks the multi-expert residuals (see
    :mod:`malot_fusion.dynamic_logits_fusion`). Each call records a :class:`FusionStep` in ``recorder``.
    ``pad_token_id`` marks left padding (``pad_is_bos``: the padding token doubles as the prompts' BOS).
    """

    def __init__(
        self,
        experts: Sequence[Any],
        base: Any,
        *,
        lower: float = 0.0,
        upper: float = 2.0,
        objective: Objective = "marginal",
        pad_token_id: int | None = None,
        pad_is_bos: bool = False,
        recorder: FusionRecorder | None = None,
    ) -> None:
        if not experts:
            raise ValueError("Dynamic Logits Fusion needs at least one expert model")
        self.experts = [
            e if isinstance(e, IncrementalLM) else IncrementalLM(e, pad_token_id=pad_token_id, pad_is_bos=pad_is_bos)
            for e in experts
        ]
        self.base = (
            base
            if isinstance(base, IncrementalLM)
            else IncrementalLM(base, pad_token_id=pad_token_id, pad_is_bos=pad_is_bos)
        )
        self.lower = lower
        self.upper = upper
        self.objective: Objective = objective
        self.recorder = recorder if recorder is not None else FusionRecorder()
        self._step = 0
        self._call = -1
        self._last_shape = (-1, -1)
        self._last_weights: torch.Tensor | None = None

    @property
    def side_forward_passes(self) -> int:
        """Forward passes run by the small models so far (experts plus base)."""
        return self.base.forward_passes + sum(e.forward_passes for e in self.experts)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """Return the fused scores for the next token of every row of ``input_ids``."""
        rows, length = input_ids.shape
        if rows != self._last_shape[0] or length <= self._last_shape[1]:
            self._step = 0  # a new generation call
            self._call += 1
            self._last_weights = None
        self._last_shape = (rows, length)
        base_logits = self.base.next_logits(input_ids)
        expert_logits = [e.next_logits(input_ids) for e in self.experts]
        vocab = scores.shape[-1]
        shifts = [logit_shift(e, base_logits, vocab) for e in expert_logits]
        log_base = torch.log_softmax(base_logits.double(), dim=-1)  # shared by every expert's target KL
        kls = [_kl_from_log_probs(torch.log_softmax(e.double(), dim=-1), log_base) for e in expert_logits]
        deltas = shifts[0][None] if len(shifts) == 1 else torch.stack(shifts)
        targets = kls[0][None] if len(kls) == 1 else torch.stack(kls)
        weights, solved_kl = _solve_weights(
            scores, deltas, targets, self.lower, self.upper, self.objective, self._last_weights
        )
        self._last_weights = weights
        fused = fuse_logits(scores, deltas, weights)
        # one expert: the search already has KL(P_fused || P_L) at the chosen weight (float64, before the cast back
        # to the scores' dtype); several experts: measure it on the fused scores
        fused_kl = solved_kl if solved_kl is not None else kl_from_logits(fused, scores)
        self.recorder.record(
            FusionStep(
                step=self._step,
                weights=weights.tolist(),
                target_kl=targets.T.tolist(),
                fused_kl=fused_kl.tolist(),
                call=self._call,
            )
        )
        self._step += 1
        return fused
