"""External MCP servers as tool sources for :class:`malot.agents.ToolAgent` (official ``mcp`` SDK client).

Configure them under ``[tools.mcp.NAME]`` with ``command = ["prog", "arg", ...]`` (stdio) or ``url = "http://..."``
(streamable HTTP). Open a source with ``async with`` in the task that owns the run (the SDK's connection lives in
that task). A server that cannot be started, does not answer within ``startup_timeout_s``, dies, or hangs gives a
:class:`~malot.agents.ToolCallError` (``unavailable`` / ``timeout``) that names the server; the tool box leaves a
source it cannot list out of the run, and a call to a dead server is answered with that error, so the agent goes on
with its other tools.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from malot.agents.tool_source import ToolCallError, ToolResult, ToolSpec
from malot.config import McpServerSettings
from malot.errors import BackendUnavailableError

__all__ = ["McpToolSource", "mcp_sources"]


class McpToolSource:
    """The tools of one MCP server. ``async with McpToolSource("lsp", settings) as source: ...``."""

    def __init__(self, name: str, settings: McpServerSettings) -> None:
        self.name = name
        self.settings = settings
        self.error: str | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: Any = None

    @property
    def target(self) -> str:
        """The command line or URL of the server, for messages."""
        if self.settings.command is not None:
            return " ".join(self.settings.command)
        return str(self.settings.url)

    async def __aenter__(self) -> McpToolSource:
        """Connect (start the server for ``command``); a failure is recorded in :attr:`error`, not raised."""
        try:
            from mcp import Client, StdioServerParameters
        except ImportError:
            raise BackendUnavailableError(
                "MCP tool sources need the 'mcp' package", hint="pip install 'malot[mcp]'"
            ) from None
        s = self.settings
        server: Any
        if s.command is not None:
            env = {**os.environ, **s.env}
            server = StdioServerParameters(command=s.command[0], args=list(s.command[1:]), env=env)
        else:
            server = s.url
        stack = contextlib.AsyncExitStack()
        try:
            async with asyncio.timeout(s.startup_timeout_s):
                self._client = await stack.enter_async_context(Client(server, read_timeout_seconds=s.call_timeout_s))
        except TimeoutError:
            self.error = f"MCP server {self.name!r} ({self.target}) did not start within {s.startup_timeout_s} s"
            await _close_quietly(stack)
        except Exception as exc:
            self.error = f"MCP server {self.name!r} ({self.target}) could not be started: {_describe(exc)}"
            await _close_quietly(stack)
        else:
            self._stack = stack
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Disconnect (and stop a stdio server)."""
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await _close_quietly(stack)

    def _require(self) -> Any:
        if self._client is None:
            raise ToolCallError(
                self.error or f"MCP server {self.name!r} is not connected",
                kind="unavailable",
                hint=f"check [tools.mcp.{self.name}] and that '{self.target}' runs",
            )
        return self._client

    async def list_tools(self) -> list[ToolSpec]:
        """The server's tools (``startup_timeout_s`` bound)."""
        client = self._require()
        try:
            async with asyncio.timeout(self.settings.startup_timeout_s):
                listed = await client.list_tools()
        except TimeoutError:
            raise self._gone(f"did not list its tools within {self.settings.startup_timeout_s} s") from None
        except Exception as exc:
            raise self._gone(_describe(exc)) from None
        return [
            ToolSpec(
                name=t.name,
                description=t.description or "",
                parameters=dict(t.input_schema or {"type": "object", "properties": {}}),
                tags=("mcp", self.name),
                source=self.name,
            )
            for t in listed.tools
        ]

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        """Call ``name`` on the server; its error results become :class:`ToolCallError` (``failed``)."""
        client = self._require()
        try:
            async with asyncio.timeout(self.settings.call_timeout_s):
                result = await client.call_tool(name, arguments)
        except TimeoutError:
            raise ToolCallError(
                f"MCP server {self.name!r} did not answer {name!r} within {self.settings.call_timeout_s} s",
                kind="timeout",
            ) from None
        except Exception as exc:
            raise self._gone(_describe(exc)) from None
        text = "\n".join(str(getattr(c, "text", "")) for c in result.content or [] if getattr(c, "type", "") == "text")
        if result.is_error:
            raise ToolCallError(f"{name} (MCP server {self.name!r}): {text or 'error'}", kind="failed")
        data = result.structured_content
        return ToolResult(content=text or json.dumps(data), data=data)

    def _gone(self, why: str) -> ToolCallError:
        self.error = f"MCP server {self.name!r} ({self.target}) failed: {why}"
        self._client = None
        return ToolCallError(self.error, kind="unavailable", hint="the agent goes on without this server's tools")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def _close_quietly(stack: contextlib.AsyncExitStack) -> None:
    with contextlib.suppress(Exception, BaseExceptionGroup):
        await stack.aclose()


def mcp_sources(servers: Mapping[str, McpServerSettings]) -> list[McpToolSource]:
    """One unopened source per configured server (``settings.tools.mcp``)."""
    return [McpToolSource(name, s) for name, s in servers.items()]
