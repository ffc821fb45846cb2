"""Traces: JSON-lines round trip and the rebuilt attempt tree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from malot.agents import Executor, JsonlTraceWriter, LeanCandidate, MemoryTrace, RunContext, Task, read_trace
from malot.agents.trace import StepEvent
from malot.errors import MalotError

from .scripted import prove_correct_loop


def _accept_round_one(candidate: LeanCandidate, ctx: RunContext[Any]) -> bool:
    return ctx.attempt_id.endswith("/1") and candidate.round == 1


async def test_trace_file_round_trips_into_the_attempt_tree(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    wf = prove_correct_loop(_accept_round_one, rounds=2)
    async with Executor(trace=JsonlTraceWriter(path)) as executor:
        result = await executor.run_group(wf, [Task(problem_id="p")] * 2, group_id="g", first_success=False)
    trace = read_trace(path)
    group = trace.groups["g"]
    assert group.finished is not None and group.finished.solved
    assert group.finished.success_attempt == "g/1"
    assert [a.attempt_id for a in group.roots] == ["g/0", "g/1"]
    by_id = {a.attempt_id: a for a in result.attempts}
    for attempt in group.attempts.values():
        original = by_id[attempt.attempt_id]
        assert attempt.status == original.status
        assert len(attempt.steps) == original.steps
        assert [s.step for s in attempt.steps] == list(range(original.steps))
        assert attempt.finished is not None and attempt.finished.usage == original.usage
    steps = group.attempts["g/1"].steps
    assert [s.node for s in steps] == ["prover", "verifier", "corrector", "verifier"]
    assert steps[-1].outcome == "verified"
    assert steps[2].output is not None and steps[2].output["round"] == 1
    summary = trace.summary()
    assert summary["groups"] == 1 and summary["solved"] == 1 and summary["attempts"] == 2
    assert summary["steps"] == 6 + 4
    assert summary["mean_overhead_ms_per_attempt"] >= 0


async def test_memory_trace_and_step_notes() -> None:
    from malot.agents import END, FunctionAgent, Message, Workflow

    async def noting(message: Message, ctx: RunContext[Any]) -> Message:
        ctx.note(weights=[0.5, 0.25])
        return Message(outcome="success")

    sink = MemoryTrace()
    wf = Workflow("n", [FunctionAgent(noting, role="n")], [("n", END)])
    await Executor(trace=sink).run_group(wf, [Task()], group_id="m")
    steps = [e for e in sink.events if isinstance(e, StepEvent)]
    assert steps[0].notes == [{"weights": [0.5, 0.25]}]
    assert sink.tree().groups["m"].finished is not None


def test_malformed_trace_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"type": "note", "group_id": "g", "data": {}}\n{"type": "step"}\n')
    with pytest.raises(MalotError, match=r"bad.jsonl, line 2: not a malot trace event"):
        read_trace(path)
