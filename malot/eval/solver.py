"""The seam between the evaluation runner and what proves problems.

A :class:`ProblemSolver` takes one problem and its budget, reports every attempt to a sink as it finishes, and
returns a :class:`~malot.eval.records.ProblemOutcome`. A *solver factory* builds one from the settings as an async
context manager (it owns the LLM, the Lean pool and the executor, shared by all the problems it solves). The
default factory, ``malot.eval.prover_solver:prover_solver``, runs the provers' strategy; ``--solver module:name``
plugs in another one (the Ray workers import factories by this name too).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

from malot.config import Settings
from malot.errors import ConfigError
from malot.eval.problems import BenchmarkProblem
from malot.eval.records import AttemptRecord, ProblemOutcome

__all__ = [
    "DEFAULT_SOLVER",
    "AttemptSink",
    "ProblemBudget",
    "ProblemSolver",
    "SolverFactory",
    "budget_from_settings",
    "load_solver_factory",
]

#: Import path of the solver factory the runner uses unless told otherwise.
DEFAULT_SOLVER = "malot.eval.prover_solver:prover_solver"

AttemptSink = Callable[[AttemptRecord], None]


@dataclass(frozen=True, slots=True)
class ProblemBudget:
    """What one problem may spend: independent samples, correction rounds per sample, tokens, Lean CPU-seconds
    and wall seconds (``None``: unlimited). ``first_success`` stops a problem's other samples once one verifies
    (cheaper, but then pass@k for k > 1 is only a lower bound)."""

    samples: int
    rounds: int = 0
    tokens: int | None = None
    lean_cpu_seconds: float | None = None
    wall_seconds: float | None = None
    first_success: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def budget_from_settings(settings: Settings, *, first_success: bool = False) -> ProblemBudget:
    """The per-problem budget: ``prover.samples``/``prover.rounds`` plus the ``budget`` section's limits
    (``budget.samples``, when set, caps ``prover.samples``)."""
    samples = settings.prover.samples
    if settings.budget.samples is not None:
        samples = min(samples, settings.budget.samples)
    return ProblemBudget(
        samples=samples,
        rounds=settings.prover.rounds,
        tokens=settings.budget.tokens,
        lean_cpu_seconds=settings.budget.lean_cpu_seconds,
        wall_seconds=settings.budget.wall_seconds,
        first_success=first_success,
    )


@runtime_checkable
class ProblemSolver(Protocol):
    """Proves problems one at a time (the runner calls :meth:`solve` concurrently for many problems)."""

    strategy: str

    async def solve(self, problem: BenchmarkProblem, budget: ProblemBudget, sink: AttemptSink) -> ProblemOutcome:
        """Attempt ``problem`` within ``budget``; call ``sink`` once per finished attempt."""
        ...


SolverFactory = Callable[[Settings], AbstractAsyncContextManager[ProblemSolver]]


def load_solver_factory(spec: str | None = None) -> SolverFactory:
    """Import a solver factory named ``module:attribute`` (default :data:`DEFAULT_SOLVER`)."""
    spec = spec or DEFAULT_SOLVER
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"solver {spec!r} is not of the form module:factory", hint="e.g. mypkg.solvers:my_solver")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())  # like `python -m`, let a solver module next to the user's files be found
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import solver module {module_name!r}: {exc}") from None
    factory = getattr(module, attr, None)
    if factory is None or not callable(factory):
        raise ConfigError(f"solver module {module_name!r} has no callable {attr!r}")
    result: SolverFactory = factory
    return result
