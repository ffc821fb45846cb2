"""The scripted model's timing options: ``gate`` holds calls, ``latency_s`` delays them, ``wait_held`` observes."""

from __future__ import annotations

import asyncio

import pytest

from malot.llm import GenerationRequest, ScriptedLLM, prompt_text


async def test_the_gate_holds_every_call_until_it_opens() -> None:
    gate = asyncio.Event()
    llm = ScriptedLLM(["a", "b"], gate=gate)
    first = asyncio.create_task(llm.complete("p"))
    second = asyncio.create_task(llm.complete("q"))
    await llm.wait_held(2)
    assert llm.held == 2 and not first.done() and not second.done()
    gate.set()
    assert await first == ["a"] and await second == ["b"]
    assert llm.held == 0


async def test_latency_per_request_delays_only_the_slow_ones_and_cancels_cleanly() -> None:
    def latency(request: GenerationRequest) -> float:
        return 3600.0 if "slow" in prompt_text(request) else 0.0

    llm = ScriptedLLM({"slow": "s", "fast": "f"}, latency_s=latency)
    slow = asyncio.create_task(llm.complete("slow prompt"))
    await llm.wait_held(1)
    assert await llm.complete("fast prompt") == ["f"]  # not held behind the slow call
    assert llm.held == 1
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow
    assert llm.held == 0


async def test_a_batch_waits_for_its_slowest_request() -> None:
    gate = asyncio.Event()
    llm = ScriptedLLM(["x", "y"], latency_s=lambda r: 0.0, gate=gate)
    task = asyncio.create_task(llm.generate([GenerationRequest(prompt="1"), GenerationRequest(prompt="2")]))
    await llm.wait_held(1)
    assert llm.held == 1  # one call for the batch
    gate.set()
    assert [r.texts for r in await task] == [["x"], ["y"]]
