"""Registration module of the example plugin: three small tools."""

from __future__ import annotations

import asyncio
import os

from pydantic import BaseModel

from malot.tools import tool


class Stats(BaseModel):
    """Summary statistics of a list of numbers."""

    count: int
    mean: float
    pid: int


@tool(family="example", tags=["arith"])
def example_add(a: int, b: int = 1) -> int:
    """Add two integers.

    Args:
        a: the first summand
        b: the second summand
    """
    return a + b


@tool(family="example", heavy=True, paper="none")
def example_stats(values: list[float]) -> Stats:
    """Count and mean of a list of numbers, computed in a worker process (it reports its process id).

    Args:
        values: the numbers
    """
    if not values:
        raise ValueError("values must not be empty")
    return Stats(count=len(values), mean=sum(values) / len(values), pid=os.getpid())


@tool(family="example")
async def example_sleep(seconds: float) -> str:
    """Sleep asynchronously, then say so.

    Args:
        seconds: how long to sleep
    """
    await asyncio.sleep(seconds)
    return f"slept {seconds}"
