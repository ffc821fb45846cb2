"""The Ray backend: spreads a run's problems over the workers of a Ray cluster; the driver writes the store.

Each worker is a Ray actor (:class:`SolverWorker`) that builds its own solver from the run's settings, so it owns
its own LLM endpoint (``worker_models`` assigns one per worker, round-robin) and its own Lean pool, and solves up to
``jobs_per_worker`` problems at a time. Workers send back each problem's attempts and outcome as plain dicts; the
driver commits them through the same :class:`~malot.eval.runner.RunRecorder` as the local backend, so the store,
resume and reports are the same whichever backend ran a problem. A worker that dies loses nothing committed: its
problems go back to the queue for the other workers. ``address="local"`` starts a private Ray
instance on this machine (for tests and single-node use); any other address joins an existing cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections import deque
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import Any

from malot.config import Settings
from malot.errors import BackendUnavailableError, MalotError
from malot.eval.problems import BenchmarkProblem
from malot.eval.records import AttemptRecord, ProblemOutcome
from malot.eval.runner import FATAL_ERRORS, RunRecorder
from malot.eval.solver import ProblemBudget, ProblemSolver, load_solver_factory

__all__ = ["RayBackend", "SolverWorker"]


class SolverWorker:
    """The body of a Ray actor: one solver (LLM endpoint, Lean pool, executor) serving many problems."""

    def __init__(self, settings: dict[str, Any], solver: str | None, sys_path: Sequence[str] = ()) -> None:
        for entry in sys_path:
            if entry not in sys.path:
                sys.path.append(entry)
        self.settings = Settings.model_validate(settings)
        self.solver_spec = solver
        self._stack: AsyncExitStack | None = None
        self._solver: ProblemSolver | None = None
        self._lock: asyncio.Lock | None = None

    async def _ensure(self) -> ProblemSolver:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._solver is None:
                stack = AsyncExitStack()
                factory = load_solver_factory(self.solver_spec)
                self._solver = await stack.enter_async_context(factory(self.settings))
                self._stack = stack
        return self._solver

    async def solve(self, problem: dict[str, Any], budget: dict[str, Any]) -> dict[str, Any]:
        """Solve one problem; returns ``{"records": [...], "outcome": {...}}`` as plain dicts."""
        solver = await self._ensure()
        item = BenchmarkProblem.model_validate(problem)
        records: list[AttemptRecord] = []
        began = asyncio.get_running_loop().time()
        try:
            outcome = await solver.solve(item, ProblemBudget(**budget), records.append)
        except FATAL_ERRORS:
            raise
        except Exception as exc:
            outcome = ProblemOutcome(item.name, False, error=f"{type(exc).__name__}: {exc}")
        if not outcome.wall_s:
            outcome.wall_s = asyncio.get_running_loop().time() - began
        worker = f"{socket.gethostname()}:{os.getpid()}"
        for record in records:
            record.flags["worker"] = worker
            record.flags["llm"] = self.settings.llm.model
        return {"records": [r.to_dict() for r in records], "outcome": outcome.to_dict(), "worker": worker}

    async def close(self) -> None:
        """Close the solver (its LLM and Lean pool)."""
        if self._stack is not None:
            await self._stack.aclose()
            self._stack = None
            self._solver = None


class RayBackend:
    """Runs problems on Ray actors; see the module docstring."""

    name = "ray"

    def __init__(
        self,
        address: str,
        *,
        solver: str | None = None,
        workers: int | None = None,
        worker_models: Sequence[str] = (),
        jobs_per_worker: int = 4,
        cpus_per_worker: float = 1.0,
        init_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.address = address
        self.solver = solver
        self.workers = workers
        self.worker_models = list(worker_models)
        self.jobs_per_worker = jobs_per_worker
        self.cpus_per_worker = cpus_per_worker
        self.init_kwargs = dict(init_kwargs or {})
        self.workers_seen: set[str] = set()
        self.lost_workers: list[str] = []

    def _connect(self) -> tuple[Any, bool]:
        try:
            import ray
        except ImportError:
            raise BackendUnavailableError(
                "the Ray backend needs the ray package", hint="pip install 'malot[ray]'"
            ) from None
        if ray.is_initialized():
            return ray, False
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, **self.init_kwargs}
        try:
            if self.address == "local":
                workers = self.workers or max(len(self.worker_models), 1)
                kwargs.setdefault("num_cpus", max(int(workers * self.cpus_per_worker + 0.999), 1))
                kwargs.setdefault("_node_ip_address", "127.0.0.1")
                ray.init(**kwargs)
            else:
                ray.init(address=self.address, **kwargs)
        except Exception as exc:
            raise BackendUnavailableError(
                f"cannot connect to the Ray cluster at {self.address!r}: {exc}",
                hint="start one with `ray start --head` and pass its address, or use --ray local",
            ) from None
        return ray, True

    def _worker_count(self, ray: Any) -> int:
        if self.workers:
            return self.workers
        if self.worker_models:
            return len(self.worker_models)
        return max(sum(1 for node in ray.nodes() if node.get("Alive")), 1)

    async def solve_all(
        self, problems: Sequence[BenchmarkProblem], budget: ProblemBudget, settings: Settings, recorder: RunRecorder
    ) -> None:
        """See :class:`~malot.eval.runner.Backend`."""
        ray, owns = self._connect()
        actors: list[Any] = []
        try:
            remote_cls = ray.remote(SolverWorker)
            count = self._worker_count(ray)
            for index in range(count):
                worker_settings = settings.model_copy(deep=True)
                worker_settings.output.trace = False  # workers must not share one trace file
                if self.worker_models:
                    worker_settings.llm.model = self.worker_models[index % len(self.worker_models)]
                actors.append(
                    remote_cls.options(num_cpus=self.cpus_per_worker, max_concurrency=self.jobs_per_worker).remote(
                        worker_settings.model_dump(mode="json"), self.solver, [os.getcwd(), *sys.path]
                    )
                )
            await self._dispatch(actors, problems, budget, recorder)
        finally:
            for actor in actors:
                with contextlib.suppress(Exception):  # a dead worker has nothing left to close
                    await asyncio.wrap_future(actor.close.remote().future())
                ray.kill(actor)
            if owns:
                ray.shutdown()

    async def _dispatch(
        self, actors: list[Any], problems: Sequence[BenchmarkProblem], budget: ProblemBudget, recorder: RunRecorder
    ) -> None:
        from ray.exceptions import RayActorError

        queue = deque(problems)
        budget_dict = budget.to_dict()
        in_flight: dict[asyncio.Future[Any], tuple[int, BenchmarkProblem]] = {}
        dead: set[int] = set()

        async def submit(worker: int) -> None:
            problem = queue.popleft()
            await recorder.started(problem.name)
            ref = actors[worker].solve.remote(problem.model_dump(mode="json"), budget_dict)
            in_flight[asyncio.wrap_future(ref.future())] = (worker, problem)

        async def fill(worker: int) -> None:
            busy = sum(1 for w, _ in in_flight.values() if w == worker)
            for _ in range(self.jobs_per_worker - busy):
                if queue:
                    await submit(worker)

        for worker in range(len(actors)):
            await fill(worker)
        try:
            while in_flight:
                done, _ = await asyncio.wait(list(in_flight), return_when=asyncio.FIRST_COMPLETED)
                for future in done:
                    worker, problem = in_flight.pop(future)
                    try:
                        result = future.result()
                    except RayActorError as exc:
                        # the worker process died: its problems go to the other workers (nothing was committed)
                        if worker not in dead:
                            dead.add(worker)
                            self.lost_workers.append(f"worker {worker}: {exc}".splitlines()[0])
                        queue.appendleft(problem)
                        alive = [w for w in range(len(actors)) if w not in dead]
                        if not alive:
                            raise MalotError(
                                f"every Ray worker died (last on {problem.name})",
                                hint="check the workers' logs, then continue with --resume",
                            ) from exc
                        for w in alive:
                            await fill(w)
                        continue
                    except Exception as exc:
                        raise MalotError(
                            f"Ray worker {worker} failed on {problem.name}: {exc}",
                            hint="fix the worker's environment, then continue with --resume",
                        ) from exc
                    self.workers_seen.add(str(result["worker"]))
                    recorder.attempts([AttemptRecord.from_dict(r) for r in result["records"]])
                    await recorder.finished_problem(ProblemOutcome.from_dict(result["outcome"]))
                    if worker not in dead:
                        await fill(worker)
        finally:
            for other in in_flight:
                other.cancel()
