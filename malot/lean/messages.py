"""Turning Lean's printed output into :class:`~malot.lean.base.LeanMessage` objects."""

from __future__ import annotations

import json
from typing import Any

from malot.lean.base import LeanMessage, Position

__all__ = ["message_from_json", "parse_json_lines"]


def _pos(value: Any) -> Position | None:
    if isinstance(value, dict) and "line" in value and "column" in value:
        return Position(line=int(value["line"]), column=int(value["column"]))
    return None


def message_from_json(obj: dict[str, Any]) -> LeanMessage:
    """One message from Lean's JSON (``lean --json`` or the REPL); ``information`` becomes ``info``."""
    severity = str(obj.get("severity", "info"))
    if severity == "information":
        severity = "info"
    if severity not in ("error", "warning", "info", "trace"):
        severity = "info"
    return LeanMessage(
        severity=severity,
        pos=_pos(obj.get("pos")),
        endPos=_pos(obj.get("endPos")),
        data=str(obj.get("data", "")),
    )


def parse_json_lines(stdout: str) -> tuple[list[LeanMessage], list[str]]:
    """Messages from ``lean --json`` output (one JSON object per line) and the lines that were not JSON."""
    messages: list[LeanMessage] = []
    other: list[str] = []
    for line in stdout.splitlines():
        text = line.strip()
        if not text:
            continue
        if text.startswith("{"):
            try:
                obj = json.loads(text)
            except json.JSONDecodeError:
                other.append(line)
                continue
            if isinstance(obj, dict) and "data" in obj:
                messages.append(message_from_json(obj))
                continue
        other.append(line)
    return messages, other
