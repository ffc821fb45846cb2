"""One extraction for every strategy: the Lean proof is the last Lean code block of a model's output.

A Lean block opens with a line starting with a fence and ``lean`` (```` ```lean4 ````, ```` ```lean ````) and closes
at the next fence; an unclosed final block counts (the model ran out of tokens or stopped at the fence). Prompts
that pre-fill an open block pass it as ``prefill``, so the model's continuation completes that block.

Degenerate outputs are handled here, before any Lean call: an empty output or an output with no Lean block yields
no code (with the reason), and a truncated output that ends in a loop of repeated lines keeps one copy of the loop.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Extraction", "LeanBlock", "extract_infill", "extract_lean", "find_lean_blocks", "trim_repetition"]

_OPEN = re.compile(r"^[ \t]*```+[ \t]*lean4?\b[^\n]*$", re.IGNORECASE)
_FENCE = "```"


@dataclass(frozen=True, slots=True)
class LeanBlock:
    """One Lean code block: its text, whether a fence closed it, and where its opening fence starts."""

    code: str
    closed: bool
    fence_start: int


@dataclass(frozen=True, slots=True)
class Extraction:
    """What was taken from an output: the Lean code (``None`` when there is none) and how it was found.

    ``reason`` says why there is no code (``"empty output"``, ``"no Lean code block"``, ``"empty Lean code
    block"``); ``closed`` whether the block's fence was closed; ``truncated`` whether generation hit its token
    limit; ``repeated`` whether a trailing loop of repeated lines was cut.
    """

    code: str | None
    reason: str | None = None
    closed: bool = False
    truncated: bool = False
    repeated: bool = False

    @property
    def ok(self) -> bool:
        """Whether a non-empty Lean block was found."""
        return self.code is not None


def find_lean_blocks(text: str) -> list[LeanBlock]:
    """Every Lean block of ``text`` in order; the last one may be unclosed."""
    blocks: list[LeanBlock] = []
    lines = text.split("\n")
    inside = False
    current: list[str] = []
    start = 0
    offset = 0
    for line in lines:
        if not inside:
            if _OPEN.match(line):
                inside, current, start = True, [], offset
        else:
            fence = line.find(_FENCE)
            if fence >= 0:
                if line[:fence].strip():
                    current.append(line[:fence])
                blocks.append(LeanBlock("\n".join(current), True, start))
                inside = False
            else:
                current.append(line)
        offset += len(line) + 1
    if inside:
        blocks.append(LeanBlock("\n".join(current), False, start))
    return blocks


def extract_lean(text: str, *, prefill: str = "", finish_reason: str = "stop") -> Extraction:
    """The last Lean block of ``prefill + text`` (see the module docstring)."""
    truncated = finish_reason == "length"
    if not text.strip() and not prefill.strip():
        return Extraction(None, "empty output", truncated=truncated)
    blocks = find_lean_blocks(prefill + text)
    if not blocks:
        return Extraction(None, "no Lean code block", truncated=truncated)
    block = blocks[-1]
    code = block.code
    repeated = False
    if truncated:
        code, repeated = trim_repetition(code)
    if prefill and len(blocks) == 1 and not text.strip():
        return Extraction(None, "empty output", truncated=truncated)
    if not code.strip():
        return Extraction(None, "empty Lean code block", closed=block.closed, truncated=truncated)
    return Extraction(code.rstrip() + "\n", closed=block.closed, truncated=truncated, repeated=repeated)


def extract_infill(prefix: str, body: str, suffix: str = "", *, finish_reason: str = "stop") -> Extraction:
    """For infill prompts: the file is ``prefix + body + suffix``; an empty body is no proof."""
    truncated = finish_reason in ("length", "unfinished")
    if not body.strip():
        return Extraction(None, "empty output", truncated=truncated)
    repeated = False
    if truncated:
        body, repeated = trim_repetition(body)
    code = prefix + body.rstrip() + suffix
    return Extraction(code.rstrip() + "\n", closed=True, truncated=truncated, repeated=repeated)


def trim_repetition(code: str, *, min_repeats: int = 3, max_period: int = 20) -> tuple[str, bool]:
    """Cut a loop at the end of ``code``: a group of 1..``max_period`` lines repeated ``min_repeats``+ times.

    One copy of the loop stays (degenerate sampling repeats a line that may itself be fine). Only called on
    truncated outputs, where a model that ran out of tokens in a loop is the usual cause.
    """
    lines = code.rstrip("\n").split("\n")
    # a partial last line (cut mid-token) is dropped before looking for the loop
    for drop in (0, 1):
        body = lines[: len(lines) - drop] if drop else lines
        for period in range(1, max_period + 1):
            if len(body) < period * min_repeats:
                break
            unit = body[-period:]
            if not any(line.strip() for line in unit):
                continue
            count = 1
            while len(body) >= period * (count + 1) and body[-period * (count + 1) : -period * count] == unit:
                count += 1
            if count >= min_repeats:
                kept = body[: len(body) - period * count] + unit
                return "\n".join(kept) + "\n", True
    return code, False
