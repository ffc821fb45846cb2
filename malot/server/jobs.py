"""The job manager: a bounded queue of proving jobs, worker tasks that run them, cancellation and event fan-out.

Jobs are persisted in a :class:`~malot.server.store.JobStore` before they are acknowledged and run independently of
the HTTP request that submitted them (a client that disconnects loses nothing). On start, jobs left queued or running
by a previous process are queued again, so a restart resumes every accepted job.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from malot.errors import MalotError
from malot.server.models import TERMINAL_STATES, JobEvent, JobView, ProveJobRequest
from malot.server.store import JobStore

__all__ = ["EventSink", "JobManager", "JobOutcome", "JobRunner", "QueueFullError", "UnknownJobError"]

EventSink = Callable[[str, dict[str, Any]], None]
"""How a runner reports progress: ``emit(type, data)``; events are stored and streamed to subscribers."""


@dataclass
class JobOutcome:
    """What a runner returns: ``proved`` or ``not_proved`` and a JSON-ready result."""

    status: str
    result: dict[str, Any] = field(default_factory=dict)


JobRunner = Callable[[ProveJobRequest, EventSink], Coroutine[Any, Any, JobOutcome]]
"""Runs one proving job; the server's default runner drives a :class:`malot.provers.Prover`."""


class QueueFullError(MalotError):
    """The job queue is full; retry after ``retry_after`` seconds."""

    def __init__(self, queue_size: int, retry_after: int) -> None:
        super().__init__(
            f"the job queue is full ({queue_size} jobs waiting)", hint=f"retry after {retry_after} seconds"
        )
        self.retry_after = retry_after


class UnknownJobError(MalotError):
    """No job has this id."""


class JobManager:
    """Owns the queue and the worker tasks; use as ``async with JobManager(...)``."""

    def __init__(self, store: JobStore, runner: JobRunner, *, queue_size: int = 50, workers: int = 4) -> None:
        if queue_size < 1 or workers < 1:
            raise MalotError("queue_size and workers must be at least 1")
        self.store = store
        self.runner = runner
        self.queue_size = queue_size
        self.workers = workers
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued = 0
        self._running: dict[str, asyncio.Task[JobOutcome]] = {}
        self._cancel_requested: set[str] = set()
        self._subscribers: dict[str, set[asyncio.Queue[JobEvent]]] = {}
        self._worker_tasks: list[asyncio.Task[None]] = []
        self._durations: list[float] = []
        self._stopping = False

    async def __aenter__(self) -> JobManager:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Queue again what a previous process left unfinished, then start the workers."""
        for job in self.store.by_status("queued", "running"):
            if job.status == "running":
                self.store.set_status(job.job_id, "queued")
                self._emit(job.job_id, "requeued", {"reason": "server restarted while the job ran"})
            self._queue.put_nowait(job.job_id)
            self._queued += 1
        self._worker_tasks = [asyncio.create_task(self._work(), name=f"malot-worker-{i}") for i in range(self.workers)]

    async def stop(self) -> None:
        """Stop the workers; running jobs stay ``running`` in the store and are resumed by the next start."""
        self._stopping = True
        tasks = [*self._worker_tasks, *self._running.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._worker_tasks = []

    @property
    def queued(self) -> int:
        """Jobs waiting for a worker."""
        return self._queued

    @property
    def running(self) -> int:
        """Jobs a worker is running."""
        return len(self._running)

    def retry_after(self) -> int:
        """Seconds a client should wait before retrying a refused submission (from recent job durations)."""
        recent = self._durations[-50:]
        mean = sum(recent) / len(recent) if recent else 1.0
        return max(1, round(mean * max(1, self._queued) / self.workers))

    def submit(self, request: ProveJobRequest) -> JobView:
        """Persist and queue a job, or raise :class:`QueueFullError`."""
        if self._queued >= self.queue_size:
            raise QueueFullError(self.queue_size, self.retry_after())
        job_id = uuid.uuid4().hex
        view = self.store.create(job_id, request.model_dump(mode="json", exclude_none=True))
        self._emit(job_id, "queued", {})
        self._queue.put_nowait(job_id)
        self._queued += 1
        return view

    def get(self, job_id: str) -> JobView:
        """A job's current view, or :class:`UnknownJobError`."""
        view = self.store.get(job_id)
        if view is None:
            raise UnknownJobError(f"no job {job_id!r}", hint="use the job_id returned by POST /v1/jobs")
        return view

    def cancel(self, job_id: str) -> JobView:
        """Cancel a queued or running job (a finished job is returned unchanged)."""
        view = self.get(job_id)
        if view.status in TERMINAL_STATES:
            return view
        self._cancel_requested.add(job_id)
        task = self._running.get(job_id)
        if task is not None:
            task.cancel()
        else:
            self.store.set_status(job_id, "cancelled", error="cancelled by the client")
            self._emit(job_id, "finished", {"status": "cancelled"})
        return self.get(job_id)

    async def events(self, job_id: str, after: int = 0) -> AsyncIterator[JobEvent]:
        """Yield a job's events after ``after``: the stored ones, then live ones until the job finishes."""
        self.get(job_id)
        inbox: asyncio.Queue[JobEvent] = asyncio.Queue()
        self._subscribers.setdefault(job_id, set()).add(inbox)
        try:
            last = after
            for event in self.store.events(job_id, after):
                last = event.seq
                yield event
                if event.type == "finished":
                    return
            if self.get(job_id).status in TERMINAL_STATES:
                return
            while True:
                event = await inbox.get()
                if event.seq <= last:
                    continue
                last = event.seq
                yield event
                if event.type == "finished":
                    return
        finally:
            subs = self._subscribers.get(job_id)
            if subs is not None:
                subs.discard(inbox)
                if not subs:
                    self._subscribers.pop(job_id, None)

    def _emit(self, job_id: str, type_: str, data: dict[str, Any]) -> None:
        event = self.store.add_event(job_id, type_, data)
        for inbox in self._subscribers.get(job_id, ()):
            inbox.put_nowait(event)

    async def _work(self) -> None:
        while True:
            job_id = await self._queue.get()
            self._queued -= 1
            view = self.store.get(job_id)
            if view is None or view.status != "queued" or job_id in self._cancel_requested:
                continue
            await self._run(view)

    async def _run(self, view: JobView) -> None:
        job_id = view.job_id
        self.store.set_status(job_id, "running")
        self._emit(job_id, "started", {})
        request = ProveJobRequest.model_validate(view.request)

        def emit(type_: str, data: dict[str, Any]) -> None:
            self._emit(job_id, type_, data)

        started = time.perf_counter()
        task = asyncio.create_task(self.runner(request, emit))
        self._running[job_id] = task
        try:
            outcome = await task
        except asyncio.CancelledError:
            if self._stopping:
                raise  # the job stays 'running' in the store and is requeued on the next start
            self.store.set_status(job_id, "cancelled", error="cancelled by the client")
            self._emit(job_id, "finished", {"status": "cancelled"})
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            self.store.set_status(job_id, "failed", error=message)
            self._emit(job_id, "finished", {"status": "failed", "error": message})
        else:
            self.store.set_status(job_id, outcome.status, result=outcome.result)
            self._emit(job_id, "finished", {"status": outcome.status, **outcome.result})
        finally:
            self._running.pop(job_id, None)
            self._durations.append(time.perf_counter() - started)
