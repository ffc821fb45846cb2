"""``malot mcp``: serve ``verify``, ``prove`` and every registered tool to MCP clients (stdio or streamable HTTP)."""

from __future__ import annotations

import asyncio

import click

from malot.cli.common import load_cli_settings


@click.command("mcp")
@click.option(
    "--transport",
    type=click.Choice(["stdio", "http"]),
    default="stdio",
    show_default=True,
    help="stdio for a client that starts malot; http for streamable HTTP at http://HOST:PORT/mcp.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address for --transport http.")
@click.option("--port", type=int, default=8765, show_default=True, help="Port for --transport http.")
@click.pass_context
def command(ctx: click.Context, transport: str, host: str, port: int) -> None:
    """Serve malot over the Model Context Protocol (needs the 'mcp' extra)."""
    from malot.server.mcp_server import build_mcp_server, serve_http, serve_stdio

    settings = load_cli_settings(ctx)
    server = build_mcp_server(settings=settings)
    if transport == "stdio":
        asyncio.run(serve_stdio(server))
    else:
        click.echo(f"malot MCP server on http://{host}:{port}/mcp", err=True)
        serve_http(server, host=host, port=port)
