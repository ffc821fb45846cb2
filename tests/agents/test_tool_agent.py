"""The function-calling loop (ToolAgent) with scripted conversations: every path a real model can take."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
from pathlib import Path
from typing import Any

import pytest

from malot.agents import Budget, Executor, MemoryTrace, ToolAgent, ToolSpec
from malot.agents.tool_source import ToolResult
from malot.llm import Capabilities, ScriptedLLM
from malot.tools import RegistrySource
from tests.agents import tool_fixtures

SOURCE = RegistrySource(tool_fixtures.REGISTRY, name="fixtures")


def call(name: str, arguments: Any, id: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "arguments": arguments}
    if id:
        out["id"] = id
    return out


def turn(*calls: dict[str, Any], text: str = "") -> dict[str, Any]:
    return {"text": text, "tool_calls": list(calls)}


def tool_turns(llm: ScriptedLLM, request: int) -> list[dict[str, Any]]:
    """The tool results the model saw in its ``request``-th request."""
    prompt = llm.requests[request].prompt
    assert isinstance(prompt, list)
    return [json.loads(m.content) for m in prompt if m.role == "tool"]


async def test_parallel_calls_run_concurrently_and_results_go_back_in_order() -> None:
    tool_fixtures.ARRIVED["count"] = 0
    llm = ScriptedLLM(
        [
            turn(
                call("rendezvous", {"party": 1}, "c1"),
                call("rendezvous", {"party": 2}, "c2"),
                call("add", {"a": 2, "b": 3}),
            ),
            "both arrived; 2 + 3 = 5",
        ]
    )
    result = await ToolAgent(llm, SOURCE).run("meet twice, then add")
    assert result.status == "answered" and result.answer == "both arrived; 2 + 3 = 5"
    assert [r.tool for r in result.tool_calls] == ["rendezvous", "rendezvous", "add"]
    assert all(r.error is None for r in result.tool_calls)
    assert tool_turns(llm, 1) == [{"result": 1}, {"result": 2}, {"result": 5}]
    second = llm.requests[1].prompt
    assert isinstance(second, list)
    assert [m.tool_call_id for m in second if m.role == "tool"][:2] == ["c1", "c2"]
    assert llm.requests[0].tools and {t["function"]["name"] for t in llm.requests[0].tools} >= {"add", "rendezvous"}
    assert result.turns == 2 and result.usage.samples == 2


async def test_invalid_json_is_shown_and_the_model_corrects_itself() -> None:
    llm = ScriptedLLM([turn(call("add", '{"a": 1, "b": ')), turn(call("add", {"a": 1, "b": 2})), "3"])
    result = await ToolAgent(llm, SOURCE).run("add 1 and 2")
    assert result.answered and result.answer == "3"
    first, second = result.tool_calls
    assert first.error_kind == "invalid_json" and "not valid JSON" in (first.error or "")
    assert second.error is None
    assert "not valid JSON" in tool_turns(llm, 1)[0]["error"]
    assert tool_turns(llm, 2)[-1] == {"result": 3}


async def test_arguments_failing_validation_reach_the_model_which_fixes_them() -> None:
    llm = ScriptedLLM([turn(call("add", {"a": "one", "b": 2, "c": 0})), turn(call("add", {"a": 1, "b": 2})), "3"])
    result = await ToolAgent(llm, SOURCE).run("add")
    assert result.answered
    bad = result.tool_calls[0]
    assert bad.error_kind == "invalid_arguments"
    message = tool_turns(llm, 1)[0]["error"]
    assert "'a'" in message and "unknown argument 'c'" in message
    assert result.tool_calls[1].error is None


async def test_unknown_tool_lists_the_tools() -> None:
    llm = ScriptedLLM([turn(call("multiply", {"a": 1})), "gave up"])
    result = await ToolAgent(llm, SOURCE).run("multiply")
    assert result.answered and result.tool_calls[0].error_kind == "unknown_tool"
    assert "add" in tool_turns(llm, 1)[0]["error"] and "multiply" in tool_turns(llm, 1)[0]["error"]


async def test_a_raising_tool_becomes_an_error_result() -> None:
    llm = ScriptedLLM([turn(call("explode", {"message": "kaboom"})), "it failed"])
    result = await ToolAgent(llm, SOURCE).run("explode")
    record = result.tool_calls[0]
    assert record.error_kind == "failed" and "kaboom" in (record.error or "") and "ValueError" in (record.error or "")
    assert result.answered


async def test_a_hanging_tool_times_out_and_the_loop_goes_on() -> None:
    llm = ScriptedLLM([turn(call("stall", {"seconds": 60})), "no answer from stall"])
    result = await ToolAgent(llm, SOURCE, tool_timeout=0.3).run("stall")
    assert result.answered and result.tool_calls[0].error_kind == "timeout"
    assert "0.3 s" in tool_turns(llm, 1)[0]["error"]


async def test_max_steps_stops_a_model_that_never_answers() -> None:
    llm = ScriptedLLM([turn(call("add", {"a": 1, "b": 1}))], on_exhausted="repeat_last")
    result = await ToolAgent(llm, SOURCE, max_steps=3).run("loop forever")
    assert result.status == "max_steps" and result.turns == 3
    assert len(result.tool_calls) == 2 and len(llm.requests) == 3


async def test_budget_end_stops_the_loop() -> None:
    llm = ScriptedLLM([turn(call("add", {"a": 1, "b": 1}))], on_exhausted="repeat_last")
    result = await ToolAgent(llm, SOURCE, max_steps=50).run("loop", budget=Budget(samples=2))
    assert result.status == "budget" and result.reason == "samples"
    assert len(llm.requests) == 2 and result.usage.samples == 2


async def test_lean_cpu_budget_spent_by_tools_withdraws_the_tools() -> None:
    burn = call("burn_lean", {"seconds": 0.6})
    llm = ScriptedLLM([turn(burn, burn), "out of Lean time"])
    result = await ToolAgent(llm, SOURCE).run("burn", budget=Budget(lean_cpu_seconds=1.0))
    assert result.answered and result.answer == "out of Lean time"
    assert result.usage.lean_cpu_seconds == pytest.approx(1.2)
    assert [r.error_kind for r in result.tool_calls] == [None, None]
    assert llm.requests[1].tools == []  # the budget is spent: the model must answer without tools


async def test_max_tool_calls_refuses_extra_calls_and_stops_offering_tools() -> None:
    llm = ScriptedLLM([turn(call("add", {"a": 1, "b": 1}), call("add", {"a": 2, "b": 2})), "done"])
    result = await ToolAgent(llm, SOURCE, max_tool_calls=1).run("add twice")
    assert [r.error_kind for r in result.tool_calls] == [None, "budget"]
    assert llm.requests[1].tools == []
    prompt = llm.requests[1].prompt
    assert isinstance(prompt, list) and "used all 1 tool calls" in prompt[-1].content


async def test_large_results_go_back_as_a_file_reference(tmp_path: Path) -> None:
    llm = ScriptedLLM([turn(call("big", {"chars": 50_000})), "ok"])
    result = await ToolAgent(llm, SOURCE, max_result_chars=1000, results_dir=tmp_path).run("big")
    record = result.tool_calls[0]
    assert record.result_file is not None and _size(record.result_file) > 50_000
    shown = tool_turns(llm, 1)[0]
    assert shown["result_file"] == record.result_file and shown["chars"] > 50_000 and len(shown["preview"]) < 1000


async def test_every_call_is_in_the_trace() -> None:
    trace = MemoryTrace()
    llm = ScriptedLLM([turn(call("add", {"a": 1, "b": 2}), call("nope", {})), "3"])
    result = await ToolAgent(llm, SOURCE).run("add", executor=Executor(trace=trace))
    assert result.answered
    steps = [e for e in trace.raw if e["type"] == "step"]
    assert [s["node"] for s in steps] == ["model", "tools", "model"]
    noted = [n["tool_call"] for n in steps[1]["notes"] if "tool_call" in n]
    assert [n["tool"] for n in noted] == ["add", "nope"]
    assert noted[0]["result_chars"] == len('{"result":3}') and len(noted[0]["arguments_sha256"]) == 16
    assert noted[1]["error_kind"] == "unknown_tool" and noted[0]["duration_s"] >= 0
    live = [e["data"] for e in trace.raw if e["type"] == "note" and "tool_call" in e["data"]]
    assert sorted(d["tool_call"]["tool"] for d in live) == ["add", "nope"]
    assert all(d["node"] == "tools" and d["attempt_id"] for d in live)
    assert trace.tree()  # the reader accepts every event


async def test_a_backend_without_tool_calling_fails_with_a_capability_error() -> None:
    llm = ScriptedLLM(["x"], capabilities=Capabilities(backend="plain", tool_calls=False))
    result = await ToolAgent(llm, SOURCE).run("add")
    assert (
        result.status == "error"
        and "CapabilityError" in (result.error or "")
        and "tool calling" in (result.error or "")
    )


class _DeadSource:
    name = "dead"

    async def list_tools(self) -> list[ToolSpec]:
        raise ConnectionError("server exited")

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        raise AssertionError("never called")


async def test_a_source_that_cannot_list_is_left_out_and_the_run_goes_on() -> None:
    llm = ScriptedLLM([turn(call("add", {"a": 1, "b": 2})), "3"])
    result = await ToolAgent(llm, [_DeadSource(), SOURCE]).run("add")
    assert result.answered and "server exited" in result.unavailable["dead"]


def _size(path: str) -> int:
    return Path(path).stat().st_size


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); it is gone once reaped, so read its state
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


async def test_cancelling_mid_call_kills_the_worker_process(tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    llm = ScriptedLLM([turn(call("heavy_wait", {"marker": str(marker)})), "unreachable"])
    task = asyncio.create_task(ToolAgent(llm, SOURCE, tool_timeout=None).run("wait"))
    async with asyncio.timeout(120):  # waits for the worker to be running, not for a fixed time
        while not (marker.exists() and marker.read_text()):  # noqa: ASYNC110 (polls another process's state)
            await asyncio.sleep(0.05)
    pid = int(marker.read_text())
    assert _alive(pid)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not _alive(pid)
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("malot-tool-")]
