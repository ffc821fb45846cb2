"""The tool registry as a tool source for the agent loop (:class:`malot.agents.ToolAgent`).

:class:`RegistrySource` lists registered tools with their tags and JSON schemas, and calls them the way
``malot tools run`` does: arguments validated against the tool's input model (a rejection is an
``invalid_arguments`` error the model can read and fix), ordinary tools in a worker thread, heavy tools in a
spawned process that is killed when the call is cancelled or times out.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from malot.agents.tool_source import ToolCallError, ToolResult, ToolSpec
from malot.errors import ToolError
from malot.tools.base import Tool
from malot.tools.registry import Isolation, ToolRegistry

__all__ = ["RegistrySource", "tool_tags"]


def tool_tags(t: Tool) -> tuple[str, ...]:
    """A tool's tags for choosing it: its declared tags, its family, ``heavy``, and ``needs:<field>`` for every
    required argument (what the caller must have at hand)."""
    tags = list(t.metadata.tags)
    if t.metadata.family and t.metadata.family not in tags:
        tags.append(t.metadata.family)
    if t.metadata.heavy:
        tags.append("heavy")
    schema = t.input_schema()
    tags.extend(f"needs:{name}" for name in schema.get("required", []))
    return tuple(tags)


class RegistrySource:
    """Tools of a :class:`ToolRegistry` (default: the plugin-loaded default registry) as a tool source.

    ``names`` limits the source to some tools; ``isolation`` is passed to :meth:`ToolRegistry.run` (``auto``: heavy
    tools in a process).
    """

    def __init__(
        self,
        registry: ToolRegistry | None = None,
        *,
        names: Sequence[str] | None = None,
        isolation: Isolation = "auto",
        name: str = "malot",
    ) -> None:
        if registry is None:
            from malot.tools.plugins import get_registry

            registry = get_registry()
        self.registry = registry
        self.names = list(names) if names is not None else None
        self.isolation: Isolation = isolation
        self.name = name
        self._specs: dict[int, tuple[Tool, ToolSpec]] = {}

    def tools(self) -> list[Tool]:
        """The tools this source offers."""
        if self.names is None:
            return self.registry.list()
        return [self.registry.get(n) for n in self.names]

    async def list_tools(self) -> list[ToolSpec]:
        """Every offered tool's spec (schema from its input model, tags from :func:`tool_tags`; cached per tool)."""
        return [self._spec(t) for t in self.tools()]

    def _spec(self, t: Tool) -> ToolSpec:
        cached = self._specs.get(id(t))
        if cached is not None and cached[0] is t:
            return cached[1]
        spec = ToolSpec(
            name=t.name, description=t.description, parameters=t.input_schema(), tags=tool_tags(t), source=self.name
        )
        self._specs[id(t)] = (t, spec)
        return spec

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        """Validate and run ``name``; the result's ``content`` is the output model as JSON."""
        if self.names is not None and name not in self.names:
            raise ToolCallError(f"tool {name!r} is not offered here", kind="unknown_tool")
        try:
            t = self.registry.get(name)
        except ToolError as exc:
            raise ToolCallError(str(exc), kind="unknown_tool") from None
        try:
            args = t.validate_arguments(arguments)
        except ToolError as exc:
            raise ToolCallError(exc.message, kind="invalid_arguments") from None
        out = await self.registry.run(name, args, isolation=self.isolation)
        lean = getattr(out, "lean_cpu_seconds", 0.0)
        data = out.model_dump(mode="json")
        return ToolResult(
            content=json.dumps(data, ensure_ascii=False, separators=(",", ":")),
            data=data,
            lean_cpu_seconds=float(lean) if isinstance(lean, int | float) else 0.0,
        )
