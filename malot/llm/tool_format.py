"""Tool calling for in-process backends: render tools into the chat prompt and parse ``<tool_call>`` blocks back.

Models trained for function calling (Qwen, Hermes, many provers' base models) take the tool schemas through their
chat template (``apply_chat_template(..., tools=...)``) and answer with ``<tool_call>{"name": ..., "arguments":
{...}}</tool_call>`` blocks. For a chat template that ignores ``tools`` (the template never mentions them), the
schemas and this answer format are written into a system turn instead, so any chat model can be asked.

``tool_choice`` for these backends: ``required`` pre-fills the assistant turn with the opening of a call, a named
choice pre-fills the call up to its arguments (vLLM in-process constrains the output with a JSON schema instead,
see :func:`required_call_schema`). A block that is not valid JSON still becomes a :class:`ToolCall` whose
``arguments`` hold the raw text, so the caller can show the model its mistake.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from typing import Any

from malot.llm.base import ChatMessage, ToolCall

__all__ = [
    "CALL_CLOSE",
    "CALL_OPEN",
    "call_prefill",
    "calls_from_constrained",
    "parse_tool_calls",
    "render_chat",
    "required_call_schema",
    "tools_system_text",
]

CALL_OPEN = "<tool_call>"
CALL_CLOSE = "</tool_call>"
_BLOCK = re.compile(re.escape(CALL_OPEN) + r"(.*?)(?:" + re.escape(CALL_CLOSE) + r"|$)", re.DOTALL)
_NAME = re.compile(r'"name"\s*:\s*"([^"]*)"')


def tools_system_text(tools: Sequence[dict[str, Any]]) -> str:
    """A system-turn text describing ``tools`` and the ``<tool_call>`` answer format (for templates without tools)."""
    lines = [
        "You may call functions. Their signatures (JSON schema) are listed inside <tools></tools>.",
        "<tools>",
        *(json.dumps(t.get("function", t), ensure_ascii=False) for t in tools),
        "</tools>",
        "To call a function, answer with one block per call:",
        f'{CALL_OPEN}\n{{"name": <function-name>, "arguments": <arguments-object>}}\n{CALL_CLOSE}',
    ]
    return "\n".join(lines)


def _template_takes_tools(tokenizer: Any) -> bool:
    template = getattr(tokenizer, "chat_template", None)
    return isinstance(template, str) and "tools" in template


def call_prefill(tool_choice: str, tools: Sequence[dict[str, Any]]) -> str:
    """The text the assistant turn starts with for ``tool_choice`` (empty for ``auto`` and ``none``)."""
    if not tools or tool_choice in ("auto", "none"):
        return ""
    if tool_choice == "required":
        return f'{CALL_OPEN}\n{{"name": "'
    return f'{CALL_OPEN}\n{{"name": {json.dumps(tool_choice)}, "arguments": '


def render_chat(
    tokenizer: Any, messages: Sequence[ChatMessage], tools: Sequence[dict[str, Any]] = (), tool_choice: str = "auto"
) -> str:
    """The prompt text for ``messages`` with the tokenizer's chat template, tools included, plus the pre-fill."""
    turns = [m.template() for m in messages]
    if tools and tool_choice != "none":
        if _template_takes_tools(tokenizer):
            text: str = tokenizer.apply_chat_template(
                turns, tools=list(tools), add_generation_prompt=True, tokenize=False
            )
            return text + call_prefill(tool_choice, tools)
        described = tools_system_text(tools)
        if turns and turns[0]["role"] == "system":
            turns[0] = {**turns[0], "content": f"{turns[0]['content']}\n\n{described}"}
        else:
            turns.insert(0, {"role": "system", "content": described})
        turns = [_plain_turn(t) for t in turns]
    elif any(m.tool_calls or m.role == "tool" for m in messages):
        turns = [_plain_turn(t) for t in turns]
    text = tokenizer.apply_chat_template(turns, add_generation_prompt=True, tokenize=False)
    return text + (call_prefill(tool_choice, tools) if tools else "")


def _plain_turn(turn: dict[str, Any]) -> dict[str, Any]:
    """A turn for a template that knows no tool fields: calls written as ``<tool_call>`` blocks, results as text."""
    content = str(turn.get("content") or "")
    for call in turn.get("tool_calls") or []:
        fn = call["function"]
        body = json.dumps({"name": fn["name"], "arguments": fn["arguments"]}, ensure_ascii=False)
        content += f"\n{CALL_OPEN}\n{body}\n{CALL_CLOSE}"
    if turn["role"] == "tool":
        return {"role": "user", "content": f"<tool_response>\n{content}\n</tool_response>"}
    return {"role": turn["role"], "content": content.strip()}


def parse_tool_calls(text: str) -> tuple[str, list[ToolCall]]:
    """Split model output into its plain text and the ``<tool_call>`` blocks it holds (an unclosed last block too)."""
    calls: list[ToolCall] = []
    for k, match in enumerate(_BLOCK.finditer(text)):
        body = match.group(1).strip()
        name, arguments = "", body
        try:
            data = json.loads(body)
        except ValueError:
            found = _NAME.search(body)
            name = found.group(1) if found else ""
        else:
            if isinstance(data, dict):
                name = str(data.get("name", ""))
                args = data.get("arguments", data.get("parameters", {}))
                arguments = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)
        calls.append(ToolCall(id=f"call_{uuid.uuid4().hex[:8]}_{k}", name=name, arguments=arguments))
    content = _BLOCK.sub("", text).strip() if calls else text
    return content, calls


def required_call_schema(
    tools: Sequence[dict[str, Any]], tool_choice: str, parallel: bool = True
) -> dict[str, Any] | None:
    """A JSON schema for constrained decoding: the named tool's arguments, or (``required``) a non-empty array of
    ``{"name", "arguments"}`` calls to any of the tools (what ``vllm serve`` constrains to). ``None`` for ``auto``."""
    if not tools or tool_choice in ("auto", "none"):
        return None
    functions = [t.get("function", t) for t in tools]
    if tool_choice != "required":
        for fn in functions:
            if fn.get("name") == tool_choice:
                named: dict[str, Any] = fn.get("parameters") or {"type": "object"}
                return named
        return None
    variants = [
        {
            "type": "object",
            "properties": {"name": {"enum": [fn["name"]]}, "arguments": fn.get("parameters") or {"type": "object"}},
            "required": ["name", "arguments"],
        }
        for fn in functions
    ]
    schema: dict[str, Any] = {"type": "array", "minItems": 1, "items": {"anyOf": variants}}
    if not parallel:
        schema["maxItems"] = 1
    return schema


def calls_from_constrained(text: str, tool_choice: str) -> list[ToolCall]:
    """Tool calls from output decoded under :func:`required_call_schema` (the raw text kept if it is not JSON)."""
    if tool_choice != "required":
        return [ToolCall(id=f"call_{uuid.uuid4().hex[:8]}_0", name=tool_choice, arguments=text.strip())]
    try:
        items = json.loads(text)
    except ValueError:
        return [ToolCall(id=f"call_{uuid.uuid4().hex[:8]}_0", name="", arguments=text)]
    out = []
    for k, item in enumerate(items if isinstance(items, list) else [items]):
        if isinstance(item, dict):
            args = item.get("arguments", {})
            out.append(
                ToolCall(
                    id=f"call_{uuid.uuid4().hex[:8]}_{k}",
                    name=str(item.get("name", "")),
                    arguments=args if isinstance(args, str) else json.dumps(args, ensure_ascii=False),
                )
            )
    return out
