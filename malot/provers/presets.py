"""Presets: an open prover model bundled with its prompt template, strategy and sampling parameters.

``malot prove`` uses :data:`DEFAULT_PRESET` (the MA-LoT strategy on DeepSeek-Prover-V1.5-RL, whose weights download
without a hub account) unless ``--preset``, ``--model`` or the config say otherwise; MA-LoT's own model, LoT-Solver,
is gated on the hub and one flag away (``--preset lot-solver``, after ``huggingface-cli login``). A model string
that matches a preset's hub id (or ends with its last path component, e.g. a local folder
``/models/Goedel-Prover-V2-8B``) picks that preset's template.
"""

from __future__ import annotations

from dataclasses import dataclass

from malot.errors import ConfigError

__all__ = ["DEFAULT_PRESET", "PRESETS", "Preset", "get_preset", "preset_for_model"]


@dataclass(frozen=True, slots=True)
class Preset:
    """A model, the template it was trained on, the strategy it suits, and the sampling its authors use."""

    name: str
    model: str
    template: str
    strategy: str
    temperature: float
    top_p: float
    max_tokens: int
    description: str


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "lot-solver",
            "RickyDeSkywalker/LoT-Solver",
            "lot-solver",
            "ma-lot",
            0.8,
            0.8,
            8192,
            "MA-LoT's released model (DeepSeek-Prover-V1.5-SFT + LoT transfer learning); prover and corrector. "
            "Gated on the hub: accept its conditions and log in (huggingface-cli login) before the first download.",
        ),
        Preset(
            "deepseek-prover-v1.5-rl",
            "deepseek-ai/DeepSeek-Prover-V1.5-RL",
            "deepseek-prover-v1.5",
            "whole-proof",
            1.0,
            0.95,
            2048,
            "DeepSeek-Prover-V1.5-RL, whole-proof completion (the baseline MA-LoT compares against).",
        ),
        Preset(
            "ma-lot-deepseek-v1.5-rl",
            "deepseek-ai/DeepSeek-Prover-V1.5-RL",
            "deepseek-prover-v1.5",
            "ma-lot",
            1.0,
            0.95,
            2048,
            "The default: MA-LoT's prover + Lean-feedback corrector on DeepSeek-Prover-V1.5-RL (its template's "
            "corrector prompt), which downloads without a hub account. MA-LoT's own LoT-Solver: --preset lot-solver.",
        ),
        Preset(
            "deepseek-prover-v1.5-sft",
            "deepseek-ai/DeepSeek-Prover-V1.5-SFT",
            "deepseek-prover-v1.5",
            "whole-proof",
            1.0,
            0.95,
            2048,
            "DeepSeek-Prover-V1.5-SFT, whole-proof completion.",
        ),
        Preset(
            "deepseek-prover-v2-7b",
            "deepseek-ai/DeepSeek-Prover-V2-7B",
            "deepseek-prover-v2",
            "whole-proof",
            1.0,
            0.95,
            8192,
            "DeepSeek-Prover-V2-7B, chat template, proof plan then Lean.",
        ),
        Preset(
            "goedel-prover-v2-8b",
            "Goedel-LM/Goedel-Prover-V2-8B",
            "goedel-prover-v2",
            "whole-proof",
            1.0,
            0.95,
            32768,
            "Goedel-Prover-V2-8B, chat template (DeepSeek-Prover-V2 prompt), long reasoning.",
        ),
        Preset(
            "goedel-prover-v2-32b",
            "Goedel-LM/Goedel-Prover-V2-32B",
            "goedel-prover-v2",
            "whole-proof",
            1.0,
            0.95,
            32768,
            "Goedel-Prover-V2-32B, chat template (DeepSeek-Prover-V2 prompt), long reasoning.",
        ),
        Preset(
            "kimina-prover-distill-8b",
            "AI-MO/Kimina-Prover-Distill-8B",
            "kimina-prover",
            "whole-proof",
            0.6,
            0.95,
            8096,
            "Kimina-Prover-Distill-8B (Qwen3), chat template, thinks in <think> ... </think>.",
        ),
        Preset(
            "kimina-prover-distill-1.7b",
            "AI-MO/Kimina-Prover-Distill-1.7B",
            "kimina-prover",
            "whole-proof",
            0.6,
            0.95,
            8096,
            "Kimina-Prover-Distill-1.7B, chat template, thinks in <think> ... </think>.",
        ),
        Preset(
            "kimina-prover-distill-0.6b",
            "AI-MO/Kimina-Prover-Distill-0.6B",
            "kimina-prover",
            "whole-proof",
            0.6,
            0.95,
            8096,
            "Kimina-Prover-Distill-0.6B, chat template, thinks in <think> ... </think>.",
        ),
        Preset(
            "codegen2-1b",
            "Salesforce/codegen2-1B_P",
            "codegen2-infill",
            "whole-proof",
            0.8,
            0.95,
            512,
            "CodeGen2-1B fill-in-the-middle (the proof body is the hole); a small code model, not a prover.",
        ),
    )
}

#: The preset used when neither a model nor a preset is configured; ``LLMSettings.model`` defaults to its model.
#: Ungated on the hub, so a fresh set-up reaches a proof without an account (LoT-Solver is gated).
DEFAULT_PRESET = "ma-lot-deepseek-v1.5-rl"


def get_preset(name: str) -> Preset:
    """The preset called ``name``; an unknown name is an error listing the known ones."""
    preset = PRESETS.get(name)
    if preset is None:
        import difflib

        close = difflib.get_close_matches(name, list(PRESETS), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"presets: {', '.join(sorted(PRESETS))}"
        raise ConfigError(f"unknown prover preset {name!r}", hint=hint)
    return preset


def preset_for_model(model: str) -> Preset | None:
    """The preset whose model ``model`` names (hub id, local folder or ``URL#served-name``), if any."""
    name = model.rsplit("#", 1)[-1] if model.startswith(("http://", "https://")) else model
    last = name.rstrip("/").rsplit("/", 1)[-1].lower()
    for preset in PRESETS.values():
        if name == preset.model or last == preset.model.rsplit("/", 1)[-1].lower():
            return preset
    return None
