"""The tool-source protocol the agent loop depends on: list tool schemas, call a tool by name.

The core defines it and never imports an implementation: :class:`malot.tools.RegistrySource` serves the tools
registered through the ``malot.tools`` entry points, :class:`malot.tools.mcp_client.McpToolSource` serves the tools
of an external MCP server. A source reports failures as :class:`ToolCallError` with a ``kind`` the loop records
(and shows the model, which may correct itself).
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from malot.errors import ToolError

__all__ = ["ToolCallError", "ToolErrorKind", "ToolResult", "ToolSource", "ToolSpec"]

#: Why a tool call failed: the model's mistakes (``invalid_json``, ``unknown_tool``, ``invalid_arguments``), the
#: tool's (``failed``, ``timeout``), the source's (``unavailable``) or the run's (``budget``: no calls left).
ToolErrorKind = Literal[
    "invalid_json", "unknown_tool", "invalid_arguments", "failed", "timeout", "unavailable", "budget"
]


class ToolCallError(ToolError):
    """A tool call that did not produce a result; ``kind`` says whose mistake it was (see :data:`ToolErrorKind`)."""

    def __init__(self, message: str, *, kind: ToolErrorKind = "failed", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.kind: ToolErrorKind = kind


class ToolSpec(BaseModel):
    """What a model is told about one tool: name, description, JSON schema of the arguments, tags, its source."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    tags: tuple[str, ...] = ()
    source: str = ""

    def openai_schema(self) -> dict[str, Any]:
        """The tool in the OpenAI function-calling format."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


class ToolResult(BaseModel):
    """A tool's answer: ``content`` is the text the model reads (JSON), ``data`` the structured result, and
    ``lean_cpu_seconds`` what it spent in Lean (charged to the run's budget)."""

    model_config = ConfigDict(frozen=True)

    content: str
    data: Any = None
    lean_cpu_seconds: float = 0.0


@runtime_checkable
class ToolSource(Protocol):
    """Somewhere tools live. ``name`` labels the source in traces and errors."""

    name: str

    async def list_tools(self) -> list[ToolSpec]:
        """The tools this source offers now."""
        ...

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        """Call tool ``name``; raise :class:`ToolCallError` (or any :class:`ToolError`) when it fails.

        The loop bounds the call with its own timeout and cancels it when the run stops; a source that runs work
        in another process must stop that process when the call is cancelled.
        """
        ...
