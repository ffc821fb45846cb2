"""The evaluation runner: solves a run's open problems concurrently and commits every attempt to the store.

One :class:`EvalRunner` drives one *session* of a run (the first run, or a ``--resume``). It takes the problems the
store still has open, hands them to a backend (:class:`LocalBackend`: one process, one solver shared by all
problems, at most ``jobs`` problems in flight; or :class:`~malot.eval.ray_backend.RayBackend`), and writes what the
backend reports through a :class:`RunRecorder`, which is the only writer of the store. The store's SQLite work runs
on its own thread (:class:`~malot.sqlite_writer.SQLiteWriter`): the event loop never waits on a commit, attempts
are queued as they are reported, and a problem's ``done`` mark is committed after all of its attempts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from malot.config import Settings
from malot.errors import BackendUnavailableError, ConfigError, MalotError
from malot.eval.problems import BenchmarkProblem
from malot.eval.records import AttemptRecord, ProblemOutcome
from malot.eval.solver import ProblemBudget, SolverFactory, budget_from_settings
from malot.eval.store import ProblemRow, ResultsStore

__all__ = ["Backend", "EvalRunner", "LocalBackend", "ProgressListener", "RunRecorder", "RunSummary"]

#: Errors that mean the whole run cannot go on (nothing is wrong with the problem itself).
FATAL_ERRORS: tuple[type[BaseException], ...] = (BackendUnavailableError, ConfigError)


class ProgressListener(Protocol):
    """Receives progress events (the CLI draws progress bars from them)."""

    def start(self, total: int, done: int, solved: int) -> None:
        """The session starts: ``total`` problems in the run, ``done`` already finished, ``solved`` of them."""

    def problem_finished(self, row: ProblemRow) -> None:
        """A problem was committed as done."""


class RunRecorder:
    """Writes what a backend reports into the store for one session (the driver side of every backend)."""

    def __init__(self, store: ResultsStore, session: int, listener: ProgressListener | None = None) -> None:
        self.store = store
        self.session = session
        self.listener = listener
        self.finished: list[ProblemRow] = []
        self._running: set[str] = set()

    async def started(self, problem: str) -> None:
        """A backend began ``problem`` (committed when this returns)."""
        await self.store.amark_running(problem, self.session)
        self._running.add(problem)

    def attempt(self, record: AttemptRecord) -> None:
        """Queue one attempt of a running problem for the next commit (returns at once: solvers call this from
        the event loop)."""
        if record.problem not in self._running:
            raise MalotError(f"a solver reported an attempt for {record.problem!r}, which is not running")
        self.store.post_attempts([record], self.session)

    def attempts(self, records: Sequence[AttemptRecord]) -> None:
        """Queue a batch of attempts (from a remote worker); they are committed together."""
        for record in records:
            if record.problem not in self._running:
                raise MalotError(f"a worker reported an attempt for {record.problem!r}, which is not running")
        self.store.post_attempts(records, self.session)

    async def finished_problem(self, outcome: ProblemOutcome) -> ProblemRow:
        """Mark a problem done (the transaction that finishes it, committed after all of its attempts) and tell
        the listener."""
        row = await self.store.afinish_problem(outcome, self.session)
        self._running.discard(outcome.problem)
        self.finished.append(row)
        if self.listener is not None:
            self.listener.problem_finished(row)
        return row


class Backend(Protocol):
    """Runs problems somewhere and reports through a :class:`RunRecorder`."""

    name: str

    async def solve_all(
        self, problems: Sequence[BenchmarkProblem], budget: ProblemBudget, settings: Settings, recorder: RunRecorder
    ) -> None:
        """Solve every problem, reporting each start, attempt and outcome to ``recorder``."""


class LocalBackend:
    """Solves problems in this process with one solver (one LLM, one Lean pool, one executor) shared by all,
    at most ``jobs`` problems at a time; the executor's per-resource limits bound the LLM and Lean work."""

    name = "local"

    def __init__(self, solver_factory: SolverFactory, *, jobs: int | None = None) -> None:
        self.solver_factory = solver_factory
        self.jobs = jobs

    async def solve_all(
        self, problems: Sequence[BenchmarkProblem], budget: ProblemBudget, settings: Settings, recorder: RunRecorder
    ) -> None:
        """See :class:`Backend`."""
        jobs = self.jobs or settings.executor.llm_slots
        gate = asyncio.Semaphore(max(jobs, 1))
        async with self.solver_factory(settings) as solver:

            async def one(problem: BenchmarkProblem) -> None:
                async with gate:
                    await recorder.started(problem.name)
                    began = time.perf_counter()
                    try:
                        outcome = await solver.solve(problem, budget, recorder.attempt)
                    except FATAL_ERRORS:
                        raise
                    except Exception as exc:  # a failure of this problem only; recorded, the run goes on
                        outcome = ProblemOutcome(problem.name, False, error=f"{type(exc).__name__}: {exc}")
                    if not outcome.wall_s:
                        outcome.wall_s = time.perf_counter() - began
                    await recorder.finished_problem(outcome)

            async with asyncio.TaskGroup() as tg:
                for problem in problems:
                    tg.create_task(one(problem))


@dataclass(slots=True)
class RunSummary:
    """What a session did and where the run stands."""

    run_dir: str
    session: int
    total: int
    done: int
    solved: int
    finished_now: int
    status: str
    wall_s: float
    #: problems of this session that ended in a solver error (not attempted: model unreachable, every attempt failed)
    errored: int = 0
    #: their distinct error messages, first seen first (at most five)
    errors: tuple[str, ...] = ()

    @property
    def nothing_attempted(self) -> bool:
        """True when this session finished problems and every one of them ended in an error."""
        return self.finished_now > 0 and self.errored == self.finished_now


class EvalRunner:
    """Drives one session of a run over the store's open problems; see the module docstring."""

    def __init__(
        self,
        store: ResultsStore,
        settings: Settings,
        backend: Backend,
        *,
        listener: ProgressListener | None = None,
        budget: ProblemBudget | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.backend = backend
        self.listener = listener
        self.budget = budget or budget_from_settings(settings)

    def solver_settings(self) -> Settings:
        """The settings solvers get: the run's, with ``output.dir`` pointing at the run folder (for traces)."""
        settings = self.settings.model_copy(deep=True)
        settings.output.dir = self.store.run_dir
        return settings

    async def run(self) -> RunSummary:
        """Solve every open problem; an interruption leaves committed work in place for ``--resume``."""
        began = time.perf_counter()
        session = await self.store.abegin_session(self.backend.name)
        recorder = RunRecorder(self.store, session, self.listener)
        status = "interrupted"
        try:
            problems = await self.store.aproblems(status="open")
            counts = await self.store.acounts()
            if self.listener is not None:
                self.listener.start(counts["total"], counts["done"], counts["solved"])
            if problems:
                await self.backend.solve_all(problems, self.budget, self.solver_settings(), recorder)
            status = "finished"
        except MalotError:
            status = "failed"
            raise
        finally:
            # shielded: an interrupt (Ctrl-C cancels this task) must not drop the session's end
            await asyncio.shield(self.store.aend_session(session, status))
        counts = await self.store.acounts()
        failed = [row.error for row in recorder.finished if row.error]
        return RunSummary(
            run_dir=str(self.store.run_dir),
            session=session,
            total=counts["total"],
            done=counts["done"],
            solved=counts["solved"],
            finished_now=len(recorder.finished),
            status=status,
            wall_s=time.perf_counter() - began,
            errored=len(failed),
            errors=tuple(dict.fromkeys(failed))[:5],
        )
