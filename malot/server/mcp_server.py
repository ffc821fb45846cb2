"""``malot mcp``: malot as an MCP server (official ``mcp`` SDK), over stdio or streamable HTTP.

It serves ``verify`` (a Lean file or statement + proof judged by the acceptance rule, every flag of the
:class:`~malot.lean.base.CheckResult`) and every registered tool, malot's own (``prove``, ``lean_check``,
``retrieve_demos``, ``recommend_tools``) and the plugins' (``fisher_merge``, ...), with their JSON schemas. A call
is validated against the tool's input model and run as ``malot tools run`` would (heavy tools in a process); a
failure is an MCP tool error (``isError``) whose text says what went wrong, so the calling model can fix it.
Needs the ``mcp`` extra: ``pip install 'malot[mcp]'``.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from malot.errors import BackendUnavailableError, MalotError
from malot.tools.registry import ToolRegistry

__all__ = ["VERIFY_SCHEMA", "build_mcp_server", "serve_http", "serve_stdio"]

VERIFY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "description": "a whole Lean file; the target is 'theorem' (default: the last)"},
        "theorem": {"type": "string", "description": "the theorem of 'code' to judge"},
        "statement": {"type": "string", "description": "the Lean statement (with 'proof' instead of 'code')"},
        "proof": {"type": "string", "description": "the proof of 'statement'"},
        "header": {"type": "string", "description": "the trusted header (imports, opens) for 'statement'"},
        "timeout_s": {"type": "number", "description": "Lean time limit in seconds"},
    },
    "additionalProperties": False,
}
_VERIFY_DESCRIPTION = (
    "Verify a Lean 4 proof with malot's acceptance rule (compiles, no sorry, allowed axioms only, the statement "
    "unchanged). Give 'code' (a whole file), or 'statement' and 'proof'. Returns the verdict and every flag."
)


def _require_mcp() -> Any:
    try:
        import mcp
        import mcp.server.lowlevel
    except ImportError:
        raise BackendUnavailableError(
            "the MCP server needs the 'mcp' package", hint="pip install 'malot[mcp]'"
        ) from None
    return mcp


def build_mcp_server(registry: ToolRegistry | None = None, *, settings: Any = None) -> Any:
    """An ``mcp.server.lowlevel.Server`` serving ``verify`` and every tool of ``registry`` (default: all plugins)."""
    _require_mcp()
    import mcp_types as types
    from mcp.server.lowlevel import Server

    from malot._version import __version__

    if registry is None:
        from malot.tools.plugins import get_registry

        registry = get_registry(settings)
    reg = registry

    def tools() -> list[Any]:
        listed = [types.Tool(name="verify", description=_VERIFY_DESCRIPTION, input_schema=VERIFY_SCHEMA)]
        for t in reg.list():
            if t.name == "verify":
                continue
            listed.append(types.Tool(name=t.name, description=t.description, input_schema=t.input_schema()))
        return listed

    async def on_list_tools(ctx: Any, params: Any) -> Any:
        return types.ListToolsResult(tools=tools())

    async def on_call_tool(ctx: Any, params: Any) -> Any:
        arguments = dict(params.arguments or {})
        try:
            if params.name == "verify":
                data = await _verify(arguments, settings)
            else:
                out = await reg.run(params.name, arguments)
                data = out.model_dump(mode="json")
        except MalotError as exc:
            return types.CallToolResult(content=[types.TextContent(type="text", text=str(exc))], is_error=True)
        except Exception as exc:  # a tool's own bug: still an answer the client can read
            text = f"{params.name} failed: {type(exc).__name__}: {exc}"
            return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)
        structured = data if isinstance(data, dict) else {"result": data}
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=json.dumps(data))], structured_content=structured
        )

    return Server(
        "malot",
        version=__version__,
        instructions="Formal theorem proving in Lean 4: verify proofs, prove statements, and run malot's tools.",
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
    )


async def _verify(arguments: dict[str, Any], settings: Any) -> dict[str, Any]:
    from malot.api import verify

    unknown = set(arguments) - set(VERIFY_SCHEMA["properties"])
    if unknown:
        raise MalotError(f"verify got unknown arguments {sorted(unknown)}", hint="give code, or statement and proof")
    timeout = arguments.get("timeout_s")
    result = await verify(
        arguments.get("code"),
        theorem=arguments.get("theorem"),
        statement=arguments.get("statement"),
        proof=arguments.get("proof"),
        header=arguments.get("header"),
        settings=settings,
        timeout_s=float(timeout) if timeout is not None else None,
    )
    data: dict[str, Any] = result.model_dump(mode="json")
    data["accepted"] = bool(result.accepted)
    data["reasons"] = list(result.reasons())
    return data


async def serve_stdio(server: Any) -> None:
    """Serve one client over this process's stdin and stdout until it disconnects."""
    mcp = _require_mcp()
    async with mcp.stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


def serve_http(server: Any, *, host: str = "127.0.0.1", port: int = 8765, path: str = "/mcp") -> None:
    """Serve streamable HTTP at ``http://host:port/path`` (blocks; uvicorn)."""
    import uvicorn

    app = server.streamable_http_app(streamable_http_path=path, host=host)
    uvicorn.run(app, host=host, port=port, log_level="warning")


Transport = Literal["stdio", "http"]
