"""Tools for the agent-loop tests, in their own registry (module level, so heavy ones can run in a process)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from malot.tools import ToolRegistry, tool

REGISTRY = ToolRegistry()

#: Calls currently inside ``rendezvous`` (reset by the tests).
ARRIVED: dict[str, int] = {"count": 0}


@tool(registry=REGISTRY, tags=("arithmetic",))
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: the first summand.
        b: the second summand.
    """
    return a + b


@tool(registry=REGISTRY, tags=("test",))
async def rendezvous(party: int, size: int = 2) -> int:
    """Wait until ``size`` calls are inside at the same time (proves calls of one turn run concurrently)."""
    ARRIVED["count"] += 1
    async with asyncio.timeout(20):
        while ARRIVED["count"] < size:  # noqa: ASYNC110 (a counting barrier over concurrent calls)
            await asyncio.sleep(0.005)
    return party


@tool(registry=REGISTRY, tags=("test",))
def explode(message: str) -> str:
    """Raise an error with ``message``."""
    raise ValueError(message)


@tool(registry=REGISTRY, tags=("test",))
async def stall(seconds: float) -> str:
    """Sleep ``seconds`` (a tool that hangs)."""
    await asyncio.sleep(seconds)
    return "woke up"


@tool(registry=REGISTRY, tags=("test",))
def big(chars: int) -> str:
    """Return ``chars`` characters (a large result)."""
    return "x" * chars


@tool(registry=REGISTRY, heavy=True, tags=("test",))
def heavy_wait(marker: str, seconds: float = 120.0) -> int:
    """In a worker process: write the process id to ``marker``, then sleep (cancelled runs must kill it)."""
    Path(marker).write_text(str(os.getpid()), encoding="utf-8")
    time.sleep(seconds)
    return os.getpid()


@tool(registry=REGISTRY, tags=("test",))
def pick(color: Literal["red", "green"]) -> str:
    """Pick a color.

    Args:
        color: red or green.
    """
    return f"picked {color}"


class LeanSpent(BaseModel):
    """What ``burn_lean`` reports: Lean CPU-seconds it spent (charged to the run's budget)."""

    lean_cpu_seconds: float


@tool(registry=REGISTRY, tags=("test",))
def burn_lean(seconds: float) -> LeanSpent:
    """Pretend to spend ``seconds`` of Lean CPU time."""
    return LeanSpent(lean_cpu_seconds=seconds)
