"""Splitting a Lean tactic block into its top-level tactics (standard library only: the REPL double uses it too)."""

from __future__ import annotations

__all__ = ["split_tactics"]


def split_tactics(block: str) -> list[str]:
    """Top-level tactics of a tactic block: a line at the block's indentation starts a tactic, deeper lines
    continue it (joined with newlines, relative indentation kept)."""
    lines = [line for line in block.split("\n") if line.strip()]
    if not lines:
        return []
    base = min(len(line) - len(line.lstrip()) for line in lines)
    out: list[str] = []
    for line in lines:
        indent = len(line) - len(line.lstrip())
        if indent <= base or not out:
            out.append(line.strip())
        else:
            out[-1] += "\n" + line[base:].rstrip()
    return out
