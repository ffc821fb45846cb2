"""Fill-in-the-middle prompts for code LLMs, rendered per model family.

CodeGen2 (and CodeGen2.5, a Llama-architecture model with the same sentinels) takes
``prefix<mask_1>suffix<|endoftext|><sep><mask_1>`` and writes the hole's content followed by ``<eom>``; output
without ``<eom>`` is *unfinished*. When prompt plus new tokens would not fit the context, the prefix is trimmed
from the left and the suffix from the right (the code nearest the hole is kept).

Which paths exist: the transformers backend (any CodeGen/CodeGen2/CodeGen2.5 checkpoint); the vLLM backends with
CodeGen2.5 or other Llama-architecture models carrying these sentinels; and the vLLM backends with CodeGen/CodeGen2
through a GPT-J conversion made once into a cache folder (:mod:`malot.llm.convert`: vLLM has no CodeGen
architecture, and its transformers fallback rejects CodeGen, but it serves GPT-J natively and the conversion is
exact).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "CODEGEN2",
    "InfillFormat",
    "cut_infill_output",
    "render_infill_text",
    "trim_infill_ids",
]


@dataclass(frozen=True, slots=True)
class InfillFormat:
    """The sentinels of one infilling family."""

    name: str
    mask: str
    eot: str
    sep: str
    end: str

    @property
    def sentinels(self) -> tuple[str, ...]:
        """Every special token this format needs in the vocabulary."""
        return (self.mask, self.eot, self.sep, self.end)


#: CodeGen2 / CodeGen2.5.
CODEGEN2 = InfillFormat(name="codegen2", mask="<mask_1>", eot="<|endoftext|>", sep="<sep>", end="<eom>")

FORMATS = {"codegen2": CODEGEN2}


def render_infill_text(prefix: str, suffix: str, fmt: InfillFormat = CODEGEN2) -> str:
    """The infill prompt as text: ``prefix<mask_1>suffix<|endoftext|><sep><mask_1>`` for CodeGen2."""
    return f"{prefix}{fmt.mask}{suffix}{fmt.eot}{fmt.sep}{fmt.mask}"


def trim_infill_ids(prefix_ids: Sequence[int], suffix_ids: Sequence[int], budget: int) -> tuple[list[int], list[int]]:
    """Fit prefix and suffix tokens into ``budget`` tokens: drop the prefix's left end and the suffix's right end.

    The prefix (the code the hole continues) gets at least half the budget when it needs it; the suffix gets the
    rest, and any share one side does not use goes to the other.
    """
    if budget <= 0:
        return [], []
    p, s = len(prefix_ids), len(suffix_ids)
    if p + s <= budget:
        return list(prefix_ids), list(suffix_ids)
    keep_suffix = min(s, max(budget - p, budget // 2))
    keep_prefix = min(p, budget - keep_suffix)
    keep_suffix = min(s, budget - keep_prefix)
    return list(prefix_ids[p - keep_prefix :]), list(suffix_ids[:keep_suffix])


def cut_infill_output(text: str, fmt: InfillFormat = CODEGEN2) -> tuple[str, bool]:
    """Cut generated text at the end sentinel; return the hole's content and whether the sentinel was found."""
    i = text.find(fmt.end)
    if i < 0:
        # without the sentinel the text may still end with the end-of-text token; strip it, but it is unfinished
        return text.replace(fmt.eot, ""), False
    return text[:i], True
