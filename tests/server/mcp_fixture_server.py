"""A small MCP server for the tests (run as a script over stdio): one good tool, one that hangs, one that dies."""

from __future__ import annotations

import os
import time

from mcp.server.mcpserver import MCPServer

app = MCPServer("fixture")


@app.tool()
def shout(text: str) -> str:
    """Upper-case the text."""
    return text.upper()


@app.tool()
def hang(seconds: float = 3600.0) -> str:
    """Never answer (sleeps)."""
    time.sleep(seconds)
    return "late"


@app.tool()
def die() -> str:
    """Kill the server process."""
    os._exit(3)


if __name__ == "__main__":
    app.run()
