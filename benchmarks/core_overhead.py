"""Executor overhead per agent step, against the same agent calls run as plain ``asyncio.gather``.

Workload: many attempts of the prover -> verifier -> corrector loop with instant scripted agents (each attempt is
accepted after ``rounds`` corrections). The executor run adds what malot does per step (slots, budget reservation,
routing, counters); the baseline awaits exactly the same agent coroutines in the same order with no framework.

    python benchmarks/core_overhead.py --quick --out core_overhead.json
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from malot.agents import (
    END,
    Agent,
    Edge,
    Executor,
    LeanCandidate,
    Message,
    RouteView,
    RunContext,
    Task,
    Usage,
    VerifierFeedback,
    Workflow,
)
from malot.agents.budget import BudgetMeter
from malot.benchmarking import benchmark_args, write_result

ROUNDS = 2
_SAMPLE = Usage(samples=1, tokens_in=10, tokens_out=5)


class Prover(Agent[Task, LeanCandidate]):
    role = "prover"
    resource = "llm"

    def estimate(self, message: Task) -> Usage:
        return Usage(samples=1)

    async def run(self, message: Task, ctx: RunContext[Any]) -> LeanCandidate:
        return LeanCandidate(code="p", usage=_SAMPLE)


class Verifier(Agent[LeanCandidate, VerifierFeedback]):
    role = "verifier"
    resource = "lean"

    async def run(self, message: LeanCandidate, ctx: RunContext[Any]) -> VerifierFeedback:
        ok = message.round >= ROUNDS
        return VerifierFeedback(outcome="verified" if ok else "failed", candidate=message)


class Corrector(Agent[VerifierFeedback, LeanCandidate]):
    role = "corrector"
    resource = "llm"

    def estimate(self, message: VerifierFeedback) -> Usage:
        return Usage(samples=1)

    async def run(self, message: VerifierFeedback, ctx: RunContext[Any]) -> LeanCandidate:
        return LeanCandidate(code="c", round=message.candidate.round + 1, usage=_SAMPLE)


def _may_correct(message: Message, view: RouteView) -> bool:
    return message.outcome == "failed" and view.visits["corrector"] < ROUNDS


def workflow() -> Workflow:
    return Workflow(
        "bench",
        [Prover(), Verifier(), Corrector()],
        [
            ("prover", "verifier"),
            Edge("verifier", END, "verified"),
            Edge("verifier", "corrector", _may_correct),
            ("verifier", END),
            ("corrector", "verifier"),
        ],
    )


STEPS_PER_ATTEMPT = 2 + 2 * ROUNDS  # prover, verifier, then (corrector, verifier) per round


async def run_executor(attempts: int, per_group: int) -> tuple[float, int]:
    wf = workflow()
    executor = Executor(limits={"llm": 256, "lean": 64})
    groups = [(f"g{i}", [Task()] * per_group) for i in range(attempts // per_group)]
    started = time.perf_counter()
    results = await executor.run_groups(wf, groups, first_success=False)
    elapsed = time.perf_counter() - started
    steps = sum(a.steps for r in results for a in r.attempts)
    return elapsed, steps


async def run_baseline(attempts: int) -> tuple[float, int]:
    prover, verifier, corrector = Prover(), Verifier(), Corrector()
    meter = BudgetMeter()

    async def one(i: int) -> int:
        ctx: RunContext[Any] = RunContext(deps=None, group_id="b", attempt_id=str(i), meter=meter)
        candidate = await prover.run(Task(), ctx)
        feedback = await verifier.run(candidate, ctx)
        steps = 2
        while feedback.outcome == "failed":
            candidate = await corrector.run(feedback, ctx)
            feedback = await verifier.run(candidate, ctx)
            steps += 2
        return steps

    started = time.perf_counter()
    counts = await asyncio.gather(*(one(i) for i in range(attempts)))
    return time.perf_counter() - started, sum(counts)


def main() -> None:
    args = benchmark_args(
        __doc__,
        default_out="core_overhead.json",
        seeds=1,
        threads=None,
        extra=[(["--attempts"], {"type": int, "default": None}), (["--repeats"], {"type": int, "default": None})],
    )
    attempts = args.attempts or (5_000 if args.quick else 20_000)
    repeats = args.repeats or (3 if args.quick else 5)
    per_group = 4

    exec_times, base_times = [], []
    steps = base_steps = 0
    for _ in range(repeats):  # interleave so machine noise hits both sides alike
        t, steps = asyncio.run(run_executor(attempts, per_group))
        exec_times.append(t)
        t, base_steps = asyncio.run(run_baseline(attempts))
        base_times.append(t)
    assert steps == base_steps == attempts * STEPS_PER_ATTEMPT, (steps, base_steps)
    t_exec = statistics.median(exec_times)
    t_base = statistics.median(base_times)
    write_result(
        args.out,
        {
            "steps_per_second": steps / t_exec,
            "baseline_steps_per_second": steps / t_base,
            "overhead_us_per_step": (t_exec - t_base) / steps * 1e6,
        },
        details={
            "ratio_executor_to_baseline_time": t_exec / t_base,
            "attempts": attempts,
            "attempts_per_group": per_group,
            "steps": steps,
            "repeats": repeats,
            "executor_seconds": exec_times,
            "baseline_seconds": base_times,
            "goal": "overhead under 50 us per step and at least 20,000 steps/s on 2 cores",
        },
    )


if __name__ == "__main__":
    main()
