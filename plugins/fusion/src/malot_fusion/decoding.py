"""The ``malot.decoding`` hook of malot-fusion: ``malot prove --fuse-expert E --fuse-base B`` decodes the large
model fused with small experts (Dynamic Logits Fusion) and records the per-step fusion weights in the trace.

Registered in ``pyproject.toml`` as ``[project.entry-points."malot.decoding"] fusion = "malot_fusion.decoding:hook"``.
Importing this module is light: the fused model (torch, transformers) is built only when a run starts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click

from malot.errors import ConfigError
from malot.llm.base import LLM, LogitsProcessor
from malot.provers.decoding import DecodingContext, DecodingRun

if TYPE_CHECKING:
    from malot_fusion.fused_llm import FusedTransformersLLM

__all__ = ["FusionHook", "FusionRun", "hook"]


class FusionRun:
    """One proof decoded with fusion: builds the fused model, then appends its weights to the trace and closes it."""

    def __init__(self, experts: Sequence[str], base: str, context: DecodingContext) -> None:
        self.experts = list(experts)
        self.base = base
        self.context = context
        self.fused: FusedTransformersLLM | None = None

    async def adjust_llm(self, llm: LLM | None) -> LLM | None:
        """Replace the model with the fused one (the large model is ``llm.model`` of the settings)."""
        if llm is not None:
            raise ConfigError("fusion builds its own model and cannot run on a model another decoding hook chose")
        from malot_fusion.prove_support import fused_llm_from_settings

        self.fused = fused_llm_from_settings(self.context.settings, self.experts, self.base)
        return self.fused

    def logits_processors(self) -> Sequence[LogitsProcessor]:
        """None: the fused model applies its fusion processor itself."""
        return ()

    async def aclose(self) -> None:
        """Append the per-step fusion weights as a note of the proof's group, then close the fused model."""
        if self.fused is None:
            return
        from malot_fusion.prove_support import append_fusion_note

        fused, self.fused = self.fused, None
        try:
            append_fusion_note(self.context.trace, self.context.group_id, fused)
        finally:
            await fused.aclose()


class FusionHook:
    """Adds ``--fuse-expert`` (repeatable) and ``--fuse-base`` to ``malot prove``."""

    name = "fusion"

    def options(self) -> Sequence[click.Option]:
        """The two fusion options."""
        return [
            click.Option(
                ["--fuse-expert", "fuse_experts"],
                multiple=True,
                help="Small fine-tuned expert fused into --model while decoding (Dynamic Logits Fusion, malot-fusion).",
            ),
            click.Option(
                ["--fuse-base", "fuse_base"],
                help="With --fuse-expert: the small base model the experts were fine-tuned from.",
            ),
        ]

    def start(self, values: Mapping[str, Any], context: DecodingContext) -> DecodingRun | None:
        """A fusion run when either option is given; both are needed."""
        experts = tuple(values.get("fuse_experts") or ())
        base = values.get("fuse_base")
        if not experts and not base:
            return None
        if not experts or not base:
            raise ConfigError("fusion needs both --fuse-expert (one or more) and --fuse-base")
        return FusionRun(experts, str(base), context)


hook = FusionHook()
