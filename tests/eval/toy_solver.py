"""A deterministic toy solver for runner/store tests (no LLM, no Lean): a test double of the solver seam.

Sample ``s`` of problem ``p`` "verifies" iff ``sha256(p/s)`` is divisible by 3, so results are reproducible
across processes. ``TOY_SOLVER_DELAY`` (seconds per attempt) slows it down for the kill-and-resume test.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from malot.config import Settings
from malot.eval.problems import BenchmarkProblem
from malot.eval.records import AttemptRecord, ProblemOutcome
from malot.eval.solver import AttemptSink, ProblemBudget


def verifies(problem: str, sample: int) -> bool:
    """Whether the toy solver's sample ``sample`` of ``problem`` succeeds."""
    return int(hashlib.sha256(f"{problem}/{sample}".encode()).hexdigest(), 16) % 3 == 0


class ToySolver:
    """Draws ``budget.samples`` samples per problem, each one attempt, with hash-decided verdicts."""

    strategy = "toy"

    def __init__(self, delay: float) -> None:
        self.delay = delay

    async def solve(self, problem: BenchmarkProblem, budget: ProblemBudget, sink: AttemptSink) -> ProblemOutcome:
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
