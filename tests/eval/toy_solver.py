"""A deterministic toy solver for runner/store tests (no LLM, no Lean): a test double of the solver seam.

Sample ``s`` of problem ``p`` "verifies" iff ``sha256(p/s)`` is divisible by 3, so results are reproducible
across processes. ``TOY_SOLVER_DELAY`` (seconds per attempt) slows it down for the kill-and-resume test;
``TOY_SOLVER_DIE_ONCE_ON=NAME:PID:MARKER`` makes a worker process exit the first time it meets NAME (a dying worker).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from malot.config import Settings
from malot.eval.problems import BenchmarkProblem
from malot.eval.records import AttemptRecord, ProblemOutcome
from malot.eval.solver import AttemptSink, ProblemBudget


def verifies(problem: str, sample: int) -> bool:
    """Whether the toy solver's sample ``sample`` of ``problem`` succeeds."""
    return int(hashlib.sha256(f"{problem}/{sample}".encode()).hexdigest(), 16) % 3 == 0


def _die_once(problem: str) -> None:
    """``TOY_SOLVER_DIE_ONCE_ON=NAME:PID:MARKER``: a process other than PID exits the first time (no MARKER yet) it
    meets NAME."""
    spec = os.environ.get("TOY_SOLVER_DIE_ONCE_ON")
    if not spec:
        return
    name, pid, marker = spec.split(":", 2)
    if name == problem and int(pid) != os.getpid() and not Path(marker).exists():
        Path(marker).write_text(str(os.getpid()), encoding="utf-8")
        os._exit(1)


class ToySolver:
    """Draws ``budget.samples`` samples per problem, each one attempt, with hash-decided verdicts."""

    strategy = "toy"

    def __init__(self, delay: float) -> None:
        self.delay = delay

    async def solve(self, problem: BenchmarkProblem, budget: ProblemBudget, sink: AttemptSink) -> ProblemOutcome:
        _die_once(problem.name)
        proof = None
        for sample in range(budget.samples):
            await asyncio.sleep(self.delay)
            ok = verifies(problem.name, sample)
            sink(
                AttemptRecord(
                    problem=problem.name,
                    sample=sample,
                    strategy=self.strategy,
                    output=f"output {sample}",
                    proof=f"proof {sample}",
                    verified=ok,
                    status="verified" if ok else "failed",
                    tokens_in=10,
                    tokens_out=5,
                    lean_s=0.01,
                    lean_cpu_s=0.01,
                    wall_s=self.delay,
                )
            )
            if ok and proof is None:
                proof = f"proof {sample}"
        return ProblemOutcome(problem.name, proof is not None, proof=proof)


@asynccontextmanager
async def toy_solver(settings: Settings) -> AsyncIterator[ToySolver]:
    """The solver factory (``--solver tests.eval.toy_solver:toy_solver``)."""
    yield ToySolver(float(os.environ.get("TOY_SOLVER_DELAY", "0")))
