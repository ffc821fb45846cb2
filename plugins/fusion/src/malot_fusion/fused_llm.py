"""An ``LLM`` that decodes a large model fused with small experts (Dynamic Logits Fusion), for the provers.

:func:`fused_llm` wraps malot's transformers backend (:class:`malot.llm.hf_backend.TransformersLLM`) of the large
model and installs a :class:`~malot_fusion.fusion_processor.FusionLogitsProcessor` whose small experts and base are
loaded next to it (same device and dtype, shared tokenizer checked). Every sampling request then decodes with the
fused logits; the per-step weights of each call are kept so a caller can attach them to its run trace::

    llm = fused_llm("big-model/", ["small-lean-expert/"], "small-base/")
    async with llm:
        results, note = await llm.generate_with_trace([GenerationRequest(prompt=..., params=...)])
        ctx.note(**note)            # fusion_weights[step][row][expert], targets, fused KLs

vLLM: the same fusion runs inside a vLLM (V1) engine as a custom logits processor, see
:mod:`malot_fusion.vllm_fusion` (``VllmLLM(large, engine_options=fusion_engine_args(experts, base))``). There vLLM
hands the processor one request row at a time, so the small models are not batched across requests, and the
per-step weights stay in the engine process (``record_path`` appends them to a file).
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from malot.errors import ConfigError, LLMError
from malot.llm.base import GenerationRequest, GenerationResult
from malot.llm.hf_backend import TransformersLLM
from malot_fusion.dynamic_logits_fusion import FusionRecorder, FusionStep, Objective
from malot_fusion.fusion_processor import FusionLogitsProcessor

__all__ = ["FusedTransformersLLM", "fused_llm"]


class FusedTransformersLLM(TransformersLLM):
    """The transformers backend of the large model, sampling through Dynamic Logits Fusion with small models.

    ``experts`` (one or more fine-tuned small models) and ``base`` (their common small base) are model folders (or
    hub ids) sharing the large model's tokenizer. ``lower``/``upper`` bound the per-step weights; ``objective`` picks
    the multi-expert solve. ``on_step`` is called with every :class:`FusionStep` as decoding runs.
    """

    def __init__(
        self,
        model: str | Path,
        experts: Sequence[str | Path],
        base: str | Path,
        *,
        lower: float = 0.0,
        upper: float = 2.0,
        objective: Objective = "marginal",
        on_step: Callable[[FusionStep], None] | None = None,
        **options: Any,
    ) -> None:
        if not experts:
            raise ConfigError("fusion needs at least one small expert model", hint="pass --fuse-expert PATH")
        if not 0.0 <= lower < upper:
            raise ConfigError(f"fusion weight bounds must satisfy 0 <= lower < upper, got [{lower}, {upper}]")
        super().__init__(model, **options)
        self.expert_names = [str(e) for e in experts]
        self.base_name = str(base)
        self.lower = lower
        self.upper = upper
        self.objective: Objective = objective
        self.recorder = FusionRecorder(callback=on_step)
        self.processor: FusionLogitsProcessor | None = None
        self._trace_lock = asyncio.Lock()

    async def load(self) -> None:
        """Load the large model (transformers backend), then the small experts and base next to it."""
        await super().load()
        if self.processor is None:
            await asyncio.to_thread(self._load_small_models)

    def _load_small_models(self) -> None:
        with self._load_lock:
            if self.processor is not None:
                return
            tf: Any = importlib.import_module("transformers")
            large_vocab = self.tokenizer.get_vocab()

            def load_one(name: str) -> Any:
                try:
                    tokenizer = tf.AutoTokenizer.from_pretrained(name, trust_remote_code=self.trust_remote_code)
                    model = tf.AutoModelForCausalLM.from_pretrained(
                        name, dtype=self.model.dtype, trust_remote_code=self.trust_remote_code
                    )
                except (OSError, ValueError) as exc:
                    raise LLMError(
                        f"transformers could not load fusion model {name!r}: {exc}", hint="pass a local model folder"
                    ) from None
                if tokenizer.get_vocab() != large_vocab:
                    raise ConfigError(
                        f"fusion model {name!r} has a different tokenizer than {self.model_name!r}",
                        hint="logit fusion needs models of one family that share a tokenizer",
                    )
                model.to(self.device)
                model.eval()
                return model

            experts = [load_one(name) for name in self.expert_names]
            base = load_one(self.base_name)
            self.processor = FusionLogitsProcessor(
                experts,
                base,
                lower=self.lower,
                upper=self.upper,
                objective=self.objective,
                pad_token_id=self.tokenizer.pad_token_id,
                pad_is_bos=_pad_is_bos(self.tokenizer),
                recorder=self.recorder,
            )
            self.logits_processors.insert(0, self.processor)  # before any other processor
            notes = (*self._capabilities.notes, f"dynamic logits fusion with {len(experts)} expert(s)")
            self._capabilities = dataclasses.replace(self._capabilities, notes=notes)

    async def generate_with_trace(
        self, requests: Sequence[GenerationRequest]
    ) -> tuple[list[GenerationResult], dict[str, Any]]:
        """Generate and return the fusion record of exactly this call (for ``RunContext.note``)."""
        async with self._trace_lock:
            self.recorder.clear()
            results = await self.generate(requests)
            note = self.recorder.as_note()
            self.recorder.clear()
        note["fusion_experts"] = list(self.expert_names)
        note["fusion_base"] = self.base_name
        return results, note

    def pop_trace_note(self) -> dict[str, Any]:
        """The fusion record accumulated since the last pop (all calls in between), then forget it."""
        note = self.recorder.as_note()
        self.recorder.clear()
        return note

    async def aclose(self) -> None:
        """Drop the small models with the large one."""
        await super().aclose()
        if self.processor is not None and self.processor in self.logits_processors:
            self.logits_processors.remove(self.processor)
        self.processor = None


def _pad_is_bos(tokenizer: Any) -> bool:
    """Whether left padding is indistinguishable from the BOS token the tokenizer puts at the start of prompts."""
    pad, bos = tokenizer.pad_token_id, tokenizer.bos_token_id
    if pad is None or pad != bos:
        return False
    ids = tokenizer("a")["input_ids"]
    return bool(ids) and ids[0] == bos


def fused_llm(
    large: str | Path,
    experts: str | Path | Sequence[str | Path],
    base: str | Path,
    *,
    lower: float = 0.0,
    upper: float = 2.0,
    objective: Objective = "marginal",
    on_step: Callable[[FusionStep], None] | None = None,
    **options: Any,
) -> FusedTransformersLLM:
    """Build the fused ``LLM``: ``large`` decoded with Dynamic Logits Fusion of ``experts`` over ``base``.

    ``options`` go to :class:`~malot.llm.hf_backend.TransformersLLM` (``device``, ``dtype``, ``max_batch_size``).
    The backend is returned unopened; use ``async with fused_llm(...) as llm``.
    """
    names = [experts] if isinstance(experts, str | Path) else list(experts)
    return FusedTransformersLLM(
        large, names, base, lower=lower, upper=upper, objective=objective, on_step=on_step, **options
    )
