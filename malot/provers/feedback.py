"""Lean's verdict turned into what the corrector reads: every error with line and column, the goal at the error
where Lean printed one, and the failed proof with each error marked inline as a Lean comment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["format_errors", "format_history", "format_thought", "mark_errors", "messages_of", "summarize_errors"]

_MAX_MESSAGE_CHARS = 1500
_MAX_THOUGHT_CHARS = 3000


def messages_of(result: Any) -> list[dict[str, Any]]:
    """The error messages of a :class:`~malot.lean.base.CheckResult` as plain dicts (line, column, data, goal)."""
    out: list[dict[str, Any]] = []
    for message in getattr(result, "messages", []) or []:
        if getattr(message, "severity", "") != "error":
            continue
        pos = getattr(message, "pos", None)
        data = str(getattr(message, "data", ""))
        if data.strip() == "internal exception #3":
            continue  # Lean's follow-up to an elaboration error; it says nothing the first error did not
        out.append(
            {
                "line": pos.line if pos is not None else None,
                "column": pos.column if pos is not None else None,
                "data": data,
                "goal": _goal_of(data),
            }
        )
    for sorry in getattr(result, "sorries", []) or []:
        goal = getattr(sorry, "goal", "")
        pos = getattr(sorry, "pos", None)
        if goal:
            out.append(
                {
                    "line": pos.line if pos is not None else None,
                    "column": pos.column if pos is not None else None,
                    "data": "the proof uses `sorry` here",
                    "goal": goal,
                }
            )
    return out


def _goal_of(data: str) -> str | None:
    """The goal state printed in an ``unsolved goals`` error, if this is one."""
    _, sep, rest = data.partition("unsolved goals")
    if not sep or not rest.strip():
        return None
    return rest.strip()


def format_errors(messages: Sequence[Mapping[str, Any]], reasons: Sequence[str] = ()) -> str:
    """Every error as a block: ``line L, column C``, the message, and the goal where there is one."""
    if not messages:
        listed = "\n".join(f"- {r}" for r in reasons) if reasons else "- Lean rejected the proof without an error"
        return f"```text\n{listed}\n```\n"
    blocks = []
    for m in messages:
        where = f"line {m['line']}, column {m['column']}" if m.get("line") is not None else "(no position)"
        data = str(m["data"])
        if len(data) > _MAX_MESSAGE_CHARS:
            data = data[:_MAX_MESSAGE_CHARS] + "\n... (message shortened)"
        goal = m.get("goal")
        if goal and data.startswith("unsolved goals"):
            data = "unsolved goals"
        block = f"```text\n{where}:\n{data}\n"
        if goal:
            block += f"goal state at the error:\n{goal}\n"
        blocks.append(block + "```\n")
    extra = [r for r in reasons if not r.endswith(" failed") and ": error: " not in r]
    if extra:
        blocks.append("```text\n" + "\n".join(f"- {r}" for r in extra[:5]) + "\n```\n")
    return "\n".join(blocks)


def mark_errors(code: str, messages: Sequence[Mapping[str, Any]]) -> str:
    """``code`` with a ``-- error (line L, column C): ...`` comment after each line that has an error.

    The marks are Lean comments, so the marked proof is still Lean; line numbers in the marks are those of the
    unmarked code Lean checked. The checker's trailing ``#print axioms`` line is dropped.
    """
    lines = code.rstrip("\n").split("\n")
    while lines and lines[-1].startswith("#print axioms"):
        lines.pop()
    while lines and not lines[-1].strip():
        lines.pop()
    marks: dict[int, list[str]] = {}
    for m in messages:
        line = m.get("line")
        if line is None:
            continue
        index = min(max(int(line), 1), len(lines)) if lines else 1
        first = str(m["data"]).strip().split("\n", 1)[0]
        marks.setdefault(index, []).append(f"-- error (line {line}, column {m.get('column')}): {first}")
    out: list[str] = []
    for i, text in enumerate(lines, 1):
        out.append(text)
        if i in marks:
            indent = text[: len(text) - len(text.lstrip())]
            out.extend(indent + mark for mark in marks[i])
    return "\n".join(out)


def summarize_errors(messages: Sequence[Mapping[str, Any]], reasons: Sequence[str] = ()) -> str:
    """One line saying why a proof failed (for the history of earlier attempts)."""
    if messages:
        m = messages[0]
        first = str(m["data"]).strip().split("\n", 1)[0]
        where = f"line {m['line']}, column {m['column']}: " if m.get("line") is not None else ""
        more = f" (+{len(messages) - 1} more)" if len(messages) > 1 else ""
        return f"{where}{first}{more}"
    return "; ".join(reasons[:2]) or "rejected"


def format_history(entries: Sequence[Mapping[str, str]]) -> str:
    """Earlier failed attempts (oldest first), each with its proof and why it failed, before the latest one."""
    if not entries:
        return ""
    parts = ["Earlier attempts that Lean also rejected (oldest first):\n"]
    for i, entry in enumerate(entries, 1):
        parts.append(f"Attempt {i} failed with: {entry['summary']}\n```lean4\n{entry['proof']}\n```\n")
    return "\n".join(parts) + "\n"


def format_thought(thought: str | None) -> str:
    """The previous reasoning, shortened to its end, as a paragraph for the corrector prompt."""
    if not thought or not thought.strip():
        return ""
    text = thought.strip()
    if len(text) > _MAX_THOUGHT_CHARS:
        text = "..." + text[-_MAX_THOUGHT_CHARS:]
    return f"My previous reasoning was:\n{text}\n\n"
