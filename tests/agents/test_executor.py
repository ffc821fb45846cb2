"""The executor: concurrency, budgets, first-success cancellation, timeouts, errors and structured cancellation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from malot.agents import (
    END,
    Agent,
    Budget,
    Executor,
    FunctionAgent,
    LeanCandidate,
    MemoryTrace,
    Message,
    RunContext,
    Task,
    Usage,
    Workflow,
)

from .scripted import ScriptedProver, prove_correct_loop


def _tasks(n: int) -> list[Task]:
    return [Task(problem_id=f"p{i}") for i in range(n)]


async def test_thousand_concurrent_instances_of_the_three_node_loop() -> None:
    # even attempts are accepted after their second correction, odd ones never are
    def accept(candidate: LeanCandidate, ctx: RunContext[Any]) -> bool:
        index = int(ctx.group_id[1:])
        return index % 2 == 0 and candidate.round == 2

    wf = prove_correct_loop(accept, rounds=2)
    executor = Executor(limits={"llm": 64, "lean": 16})
    groups = [(f"g{i}", _tasks(1)) for i in range(1000)]
    results = await executor.run_groups(wf, groups)
    assert len(results) == 1000
    solved = [r for r in results if r.solved]
    assert len(solved) == 500
    for r in results:
        (attempt,) = r.attempts
        # prover, verifier, corrector, verifier, corrector, verifier
        assert attempt.steps == 6
        assert attempt.status == ("success" if int(r.group_id[1:]) % 2 == 0 else "failed")
        assert attempt.usage.samples == 3
    assert executor.meter.samples == 3000
    assert executor.meter.lean_cpu_seconds == pytest.approx(1000 * 3 * 0.5)
    assert executor.in_use("llm") == 0 and executor.in_use("lean") == 0


async def test_sample_budget_stops_work_exactly_when_spent() -> None:
    wf = prove_correct_loop(lambda c, ctx: False, rounds=10, delay=0.001)
    executor = Executor(limits={"llm": 4})
    result = await executor.run_group(wf, _tasks(3), budget=Budget(samples=7))
    assert result.usage.samples == 7
    assert sum(a.usage.samples for a in result.attempts) == 7
    assert {a.status for a in result.attempts} == {"budget"}
    assert {a.reason for a in result.attempts} == {"samples"}
    assert result.stopped == "samples"
    # the last candidate drawn is still verified: every attempt ends on a verifier message
    assert all(type(a.final).__name__ == "VerifierFeedback" for a in result.attempts)


async def test_run_wide_budget_is_shared_by_groups() -> None:
    wf = prove_correct_loop(lambda c, ctx: False, rounds=3)
    executor = Executor(budget=Budget(samples=10))
    results = await executor.run_groups(wf, [(f"g{i}", _tasks(2)) for i in range(4)])
    assert sum(r.usage.samples for r in results) == 10
    assert executor.meter.samples == 10


async def test_token_budget_stops_new_llm_steps_once_spent() -> None:
    wf = prove_correct_loop(lambda c, ctx: False, rounds=10)
    executor = Executor()
    # every prover step spends 15 tokens, every corrector step 25
    result = await executor.run_group(wf, _tasks(1), budget=Budget(tokens=60))
    (attempt,) = result.attempts
    assert attempt.status == "budget" and attempt.reason == "tokens"
    assert attempt.usage.tokens == 15 + 25 + 25  # the step that crossed 60 ran; none after it
    assert result.usage.tokens >= 60


async def test_token_overshoot_is_bounded_by_the_steps_in_flight() -> None:
    # the README's bound: tokens stop new LLM steps once spent, so at most (LLM slots) steps already running add
    # their tokens after the crossing; each step here spends at most 25 tokens (corrector), 15 (prover)
    wf = prove_correct_loop(lambda c, ctx: False, rounds=10, delay=0.001)
    slots = 4
    executor = Executor(limits={"llm": slots})
    result = await executor.run_group(wf, _tasks(8), budget=Budget(tokens=100))
    assert result.stopped == "tokens"
    assert 100 <= result.usage.tokens < 100 + slots * 25


async def test_lean_budget_stops_verification() -> None:
    wf = prove_correct_loop(lambda c, ctx: False, rounds=10)
    result = await Executor().run_group(wf, _tasks(1), budget=Budget(lean_cpu_seconds=1.0))
    (attempt,) = result.attempts
    assert attempt.reason == "lean_cpu_seconds"
    assert attempt.usage.lean_cpu_seconds == pytest.approx(1.0)


async def test_first_success_cancels_siblings_and_no_cancelled_step_runs_after() -> None:
    log: list[tuple[str, str, float]] = []
    winner = "g/0"

    def accept(candidate: LeanCandidate, ctx: RunContext[Any]) -> bool:
        ok = ctx.attempt_id == winner
        if ok:
            log.append((ctx.attempt_id, "WIN", 0.0))
        return ok

    wf = prove_correct_loop(accept, rounds=50, delay=0.001, log=log)
    result = await Executor(limits={"llm": 3}).run_group(wf, _tasks(8), group_id="g")
    assert result.solved and result.success is not None and result.success.attempt_id == winner
    assert result.stopped == "first_success"
    statuses = {a.attempt_id: a.status for a in result.attempts}
    assert statuses.pop(winner) == "success"
    assert set(statuses.values()) == {"cancelled"}
    win_at = next(i for i, entry in enumerate(log) if entry[1] == "WIN")
    assert [entry for entry in log[win_at + 1 :] if entry[0] != winner] == []


async def test_first_success_with_instant_agents_cancels_attempts_that_never_started() -> None:
    # no agent awaits anything: the first attempt succeeds before its siblings' tasks ever run
    wf = prove_correct_loop(lambda c, ctx: True, rounds=0)
    sink = MemoryTrace()
    result = await Executor(trace=sink).run_group(wf, _tasks(4), group_id="i")
    assert [a.status for a in sink.tree().groups["i"].attempts.values()] == ["success"] + ["cancelled"] * 3
    assert [a.status for a in result.attempts] == ["success", "cancelled", "cancelled", "cancelled"]
    assert [a.attempt_id for a in result.attempts] == ["i/0", "i/1", "i/2", "i/3"]
    assert result.usage.samples == 1


async def test_without_first_success_all_attempts_finish() -> None:
    wf = prove_correct_loop(lambda c, ctx: True, rounds=1)
    result = await Executor().run_group(wf, _tasks(5), first_success=False)
    assert [a.status for a in result.attempts] == ["success"] * 5
    assert result.success is not None and result.stopped is None


async def test_per_attempt_timeout_fires_and_cleans_up() -> None:
    cleaned: list[str] = []

    async def slow(message: Message, ctx: RunContext[Any]) -> Message:
        try:
            await asyncio.sleep(30)
        finally:
            cleaned.append(ctx.attempt_id)
        return message

    wf = Workflow("slow", [FunctionAgent(slow, role="slow")], [("slow", END)])
    result = await Executor(attempt_timeout=0.05).run_group(wf, _tasks(2), group_id="t")
    assert [a.status for a in result.attempts] == ["timeout", "timeout"]
    assert sorted(cleaned) == ["t/0", "t/1"]
    assert all(a.wall_s < 5 for a in result.attempts)


async def test_wall_budget_ends_attempts_as_budget() -> None:
    async def slow(message: Message, ctx: RunContext[Any]) -> Message:
        await asyncio.sleep(30)
        return message

    wf = Workflow("slow", [FunctionAgent(slow, role="slow")], [("slow", END)])
    result = await Executor().run_group(wf, _tasks(1), budget=Budget(wall_seconds=0.05))
    assert result.attempts[0].status == "budget"
    assert result.attempts[0].reason == "wall_seconds"


async def test_concurrency_limit_per_resource_is_respected() -> None:
    in_flight = 0
    peak = 0

    async def step(message: Message, ctx: RunContext[Any]) -> Message:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.002)
        in_flight -= 1
        return Message(outcome="done")

    wf = Workflow("w", [FunctionAgent(step, role="gen", resource="llm")], [("gen", END)])
    await Executor(limits={"llm": 3}).run_group(wf, _tasks(40))
    assert peak == 3


async def test_agent_errors_are_recorded_or_raised() -> None:
    async def boom(message: Message, ctx: RunContext[Any]) -> Message:
        raise ValueError("bad output")

    wf = Workflow("w", [FunctionAgent(boom, role="boom")], [("boom", END)])
    result = await Executor().run_group(wf, _tasks(1))
    assert result.attempts[0].status == "error"
    assert result.attempts[0].error == "ValueError: bad output"
    with pytest.raises(ExceptionGroup):
        await Executor(raise_errors=True).run_group(wf, _tasks(1))


async def test_cancelling_the_caller_cancels_attempts_and_their_cleanup_runs() -> None:
    started = asyncio.Event()
    cleaned: list[str] = []

    async def hold(message: Message, ctx: RunContext[Any]) -> Message:
        started.set()
        try:
            await asyncio.sleep(30)
        finally:
            cleaned.append(ctx.attempt_id)
        return message

    wf = Workflow("w", [FunctionAgent(hold, role="hold", resource="llm")], [("hold", END)])
    executor = Executor(limits={"llm": 2})
    task = asyncio.create_task(executor.run_group(wf, _tasks(3), group_id="c"))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(cleaned) == ["c/0", "c/1"]  # the third never got a slot
    assert executor.in_use("llm") == 0
    assert executor.meter.samples == 0


async def test_max_steps_bounds_an_attempt() -> None:
    async def again(message: Message, ctx: RunContext[Any]) -> Message:
        return Message(outcome="again")

    wf = Workflow("loop", [FunctionAgent(again, role="a")], [("a", "a", "again"), ("a", END)], max_steps=5)
    result = await Executor().run_group(wf, _tasks(1))
    assert result.attempts[0].status == "max_steps"
    assert result.attempts[0].steps == 5


async def test_reserved_samples_are_released_when_a_step_fails() -> None:
    class Failing(Agent[Task, LeanCandidate]):
        role = "prover"

        def estimate(self, message: Task) -> Usage:
            return Usage(samples=4)

        async def run(self, message: Task, ctx: RunContext[Any]) -> LeanCandidate:
            raise RuntimeError("llm down")

    wf = Workflow("w", [Failing()], [("prover", END)])
    executor = Executor()
    await executor.run_group(wf, _tasks(2))
    assert executor.meter.samples == 0
    assert ScriptedProver().estimate(Task()).samples == 1
