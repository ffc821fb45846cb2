"""ToolRegistry: registering, lookups, running inline / in a thread / in a process, errors and timeouts."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable

import pytest
from pydantic import BaseModel

from malot.errors import ToolError
from malot.tools import Tool, ToolRegistry, tool

PROCESS_TOOLS = """
    import os
    import time

    from pydantic import BaseModel

    from malot.tools import tool


    class Where(BaseModel):
        pid: int
        total: float


    @tool(heavy=True, family="test")
    def heavy_sum(values: list[float]) -> Where:
        \"\"\"Sum in a worker process.\"\"\"
        return Where(pid=os.getpid(), total=sum(values))


    @tool(heavy=True)
    def heavy_fail(message: str) -> int:
        \"\"\"Always fails.\"\"\"
        raise RuntimeError(message)


    @tool(heavy=True)
    def heavy_sleep(seconds: float) -> int:
        \"\"\"Sleeps (to be killed by a timeout).\"\"\"
        time.sleep(seconds)
        return 0


    @tool(heavy=True)
    def heavy_crash(code: int) -> int:
        \"\"\"Exits the worker without answering.\"\"\"
        os._exit(code)
"""


def where_am_i(x: int) -> dict[str, int]:
    """Report the thread that ran the tool."""
    return {"x": x, "thread": threading.get_ident()}


async def async_tool(x: int) -> int:
    """An async tool."""
    await asyncio.sleep(0)
    return x + 1


def failing(x: int) -> int:
    """Raises."""
    raise ValueError(f"bad x {x}")


def slow(seconds: float) -> int:
    """Sleeps in its thread."""
    import time

    time.sleep(seconds)
    return 1


@pytest.fixture
def reg() -> ToolRegistry:
    return ToolRegistry([Tool.from_function(f) for f in (where_am_i, async_tool, failing, slow)])


def test_register_same_function_twice_is_harmless_other_function_is_an_error(reg: ToolRegistry) -> None:
    before = len(reg)
    reg.register(where_am_i)
    reg.register(Tool.from_function(where_am_i))
    assert len(reg) == before

    def where_am_i_2(x: int) -> int:
        """Another function."""
        return x

    with pytest.raises(ToolError, match="already taken"):
        reg.register(Tool.from_function(where_am_i_2, name="where_am_i"))
    reg.register(Tool.from_function(where_am_i_2, name="where_am_i"), replace=True)
    assert reg.get("where_am_i").fn is where_am_i_2


def test_unknown_tool_suggests_close_names(reg: ToolRegistry) -> None:
    with pytest.raises(ToolError, match="did you mean where_am_i"):
        reg.get("where_am_I")


def test_list_filters_and_openai_rendering(reg: ToolRegistry) -> None:
    reg.register(Tool.from_function(slow, name="slow_tagged", family="f", tags=["t"]))
    assert [t.name for t in reg.list(family="f")] == ["slow_tagged"]
    assert [t.name for t in reg.list(tag="t")] == ["slow_tagged"]
    rendered = reg.openai_tools(["failing", "slow"])
    assert [r["function"]["name"] for r in rendered] == ["failing", "slow"]
    assert len(reg.openai_tools()) == len(reg)


async def test_run_in_thread_inline_and_async(reg: ToolRegistry) -> None:
    here = threading.get_ident()
    out = await reg.run("where_am_i", {"x": 3})
    assert out.model_dump()["result"]["x"] == 3
    assert out.model_dump()["result"]["thread"] != here  # auto: a worker thread
    inline = await reg.run("where_am_i", {"x": 3}, isolation="inline")
    assert inline.model_dump()["result"]["thread"] == here
    assert (await reg.run("async_tool", {"x": 1})).model_dump() == {"result": 2}


async def test_errors_become_tool_errors(reg: ToolRegistry) -> None:
    with pytest.raises(ToolError, match=r"tool 'failing' failed: ValueError: bad x 7"):
        await reg.run("failing", {"x": 7})
    with pytest.raises(ToolError, match="invalid arguments for tool 'failing'"):
        await reg.run("failing", {"x": "seven"})
    with pytest.raises(ToolError, match="timed out"):
        await reg.run("slow", {"seconds": 0.5}, timeout=0.05)
    answer = await reg.call_json("failing", '{"x": 1}')
    assert answer["ok"] is False and "bad x 1" in answer["error"]
    assert await reg.call_json("async_tool", {"x": 1}) == {"ok": True, "output": {"result": 2}}


def test_run_sync(reg: ToolRegistry) -> None:
    assert reg.run_sync("async_tool", {"x": 41}).model_dump() == {"result": 42}


async def test_heavy_tools_run_in_a_process(
    make_module: Callable[[str], str], fresh_default_registry: ToolRegistry
) -> None:
    import importlib

    module = importlib.import_module(make_module(PROCESS_TOOLS))
    reg = ToolRegistry()
    for name in ("heavy_sum", "heavy_fail", "heavy_sleep", "heavy_crash"):
        reg.register(getattr(module, name))
    assert fresh_default_registry.names() == reg.names()  # the decorator registered them in the default registry
    assert reg.get("heavy_sum").metadata.heavy
    out = await reg.run("heavy_sum", {"values": [1, 2, 3.5]})
    assert isinstance(out, BaseModel) and type(out).__name__ == "Where"
    assert out.model_dump()["total"] == 6.5
    assert out.model_dump()["pid"] != os.getpid()
    thread_out = await reg.run("heavy_sum", {"values": [1]}, isolation="thread")
    assert thread_out.model_dump()["pid"] == os.getpid()
    with pytest.raises(ToolError, match="RuntimeError: boom"):
        await reg.run("heavy_fail", {"message": "boom"})
    with pytest.raises(ToolError, match=r"timed out after 0\.5 s"):
        await reg.run("heavy_sleep", {"seconds": 30}, timeout=0.5)
    with pytest.raises(ToolError, match="crashed in its worker process"):
        await reg.run("heavy_crash", {"code": 3})


async def test_local_functions_cannot_run_in_a_process() -> None:
    @tool(registry=ToolRegistry(), heavy=True)
    def local(x: int) -> int:
        """Defined inside a test."""
        return x

    reg = ToolRegistry([Tool.from_function(local)])
    with pytest.raises(ToolError, match="not importable by name"):
        await reg.run("local", {"x": 1}, isolation="process")
