"""The job manager: a bounded queue of proving jobs, worker tasks that run them, cancellation and event fan-out.

Jobs are committed to a :class:`~malot.server.store.JobStore` (off the event loop) before they are acknowledged and
run independently of the HTTP request that submitted them (a client that disconnects loses nothing). On start, jobs
left queued or running by a previous process are queued again, so a restart resumes every accepted job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from malot.errors import MalotError
from malot.server.models import TERMINAL_STATES, JobEvent, JobView, ProveJobRequest
from malot.server.store import JobStore

__all__ = ["EventSink", "JobManager", "JobOutcome", "JobRunner", "QueueFullError", "UnknownJobError"]

log = logging.getLogger(__name__)

#: How many recent job durations ``Retry-After`` is estimated from.
DURATION_WINDOW = 50
CANCELLED = "cancelled by the client"

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
    """Owns the queue and the worker tasks; use as ``async with JobManager(...)``.

    Storage runs off the event loop (see :mod:`malot.server.store` for what is durable when). Per-job state held
    in memory (event numbering, cancellation requests) exists only for jobs that are queued or running here and is
    dropped when they finish, so memory does not grow with the number of jobs served; job durations for
    ``Retry-After`` are a window of the last :data:`DURATION_WINDOW`.
    """

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
        self._last_seq: dict[str, int] = {}
        self._cancel_requested: set[str] = set()
        self._subscribers: dict[str, set[asyncio.Queue[JobEvent]]] = {}
        self._admitting: set[asyncio.Task[JobView]] = set()
        self._worker_tasks: list[asyncio.Task[None]] = []
        self._durations: deque[float] = deque(maxlen=DURATION_WINDOW)
        self._stopping = False

    async def __aenter__(self) -> JobManager:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Queue again what a previous process left unfinished, then start the workers."""
        for view, last in await self.store.requeue_unfinished():
            self._last_seq[view.job_id] = last
            if view.status == "running":
                self._emit(view.job_id, "requeued", {"reason": "server restarted while the job ran"})
            self._queue.put_nowait(view.job_id)
            self._queued += 1
        self._worker_tasks = [asyncio.create_task(self._work(), name=f"malot-worker-{i}") for i in range(self.workers)]

    async def stop(self) -> None:
        """Stop the workers; running jobs stay ``running`` in the store and are resumed by the next start."""
        if self._admitting:
            await asyncio.gather(*self._admitting, return_exceptions=True)
        self._stopping = True
        tasks = [*self._worker_tasks, *self._running.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._worker_tasks = []
        await self.store.flush()

    @property
    def queued(self) -> int:
        """Jobs waiting for a worker."""
        return self._queued

    @property
    def running(self) -> int:
        """Jobs a worker is running."""
        return len(self._running)

    def tracked(self) -> dict[str, int]:
        """Sizes of the per-job state in memory (all bounded by the jobs queued or running here)."""
        return {
            "sequence_numbers": len(self._last_seq),
            "cancel_requests": len(self._cancel_requested),
            "running": len(self._running),
            "subscribed_jobs": len(self._subscribers),
            "durations": len(self._durations),
        }

    def retry_after(self) -> int:
        """Seconds a client should wait before retrying a refused submission (from recent job durations)."""
        mean = sum(self._durations) / len(self._durations) if self._durations else 1.0
        return max(1, round(mean * max(1, self._queued) / self.workers))

    async def submit(self, request: ProveJobRequest) -> JobView:
        """Persist and queue a job (committed before this returns), or raise :class:`QueueFullError`."""
        if self._queued >= self.queue_size:
            raise QueueFullError(self.queue_size, self.retry_after())
        self._queued += 1  # the slot is taken now: concurrent submissions cannot overfill the queue
        admit = asyncio.create_task(self._admit(uuid.uuid4().hex, request.model_dump(mode="json", exclude_none=True)))
        self._admitting.add(admit)
        admit.add_done_callback(self._admitting.discard)
        # shielded: a client that disconnects while the job is being stored does not leave it stored but unqueued
        return await asyncio.shield(admit)

    async def _admit(self, job_id: str, request: dict[str, Any]) -> JobView:
        try:
            view = await self.store.create(job_id, request)
        except BaseException:
            self._queued -= 1
            raise
        self._last_seq[job_id] = 1  # the store wrote the 'queued' event with the job
        self._queue.put_nowait(job_id)
        return view

    async def get(self, job_id: str) -> JobView:
        """A job's current view, or :class:`UnknownJobError`."""
        view = await self.store.get(job_id)
        if view is None:
            raise UnknownJobError(f"no job {job_id!r}", hint="use the job_id returned by POST /v1/jobs")
        return view

    async def cancel(self, job_id: str) -> JobView:
        """Cancel a queued or running job (a finished job is returned unchanged)."""
        view = await self.get(job_id)
        if view.status in TERMINAL_STATES:
            return view
        task = self._running.get(job_id)
        if task is None and await self.store.cancel_if_queued(job_id, CANCELLED):
            self._emit(job_id, "finished", {"status": "cancelled"})
            self._forget(job_id)
        elif job_id in self._last_seq:
            # running, or taken by a worker a moment ago (it checks this set before it starts the job)
            self._cancel_requested.add(job_id)
            task = self._running.get(job_id)
            if task is not None:
                task.cancel()
        return await self.get(job_id)

    async def events(self, job_id: str, after: int = 0) -> AsyncIterator[JobEvent]:
        """Yield a job's events after ``after``: the stored ones, then live ones until the job finishes."""
        await self.get(job_id)
        inbox: asyncio.Queue[JobEvent] = asyncio.Queue()
        self._subscribers.setdefault(job_id, set()).add(inbox)
        try:
            last = after
            for event in await self.store.events(job_id, after):
                last = event.seq
                yield event
                if event.type == "finished":
                    return
            if (await self.get(job_id)).status in TERMINAL_STATES:
                # finished meanwhile: its last events were committed before its final state
                for event in await self.store.events(job_id, last):
                    yield event
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
        last = self._last_seq.get(job_id)
        if last is None:
            log.warning("dropped a %r event of job %s, which is not queued or running here", type_, job_id)
            return
        self._last_seq[job_id] = last + 1
        event = self.store.post_event(job_id, last + 1, type_, data)
        for inbox in self._subscribers.get(job_id, ()):
            inbox.put_nowait(event)

    def _forget(self, job_id: str) -> None:
        self._last_seq.pop(job_id, None)
        self._cancel_requested.discard(job_id)

    async def _end(
        self, job_id: str, status: str, *, result: dict[str, Any] | None = None, error: str | None = None
    ) -> None:
        """Record a job's end: the ``finished`` event, then the final state (committed with the event)."""
        data: dict[str, Any] = {"status": status}
        if status == "failed" and error is not None:
            data["error"] = error
        self._emit(job_id, "finished", {**data, **(result or {})})
        try:
            await self.store.finish(job_id, status, result=result, error=error)
        finally:
            self._forget(job_id)

    async def _work(self) -> None:
        while True:
            job_id = await self._queue.get()
            self._queued -= 1
            view = await self.store.claim(job_id)
            if view is None:  # cancelled while it waited
                self._forget(job_id)
                continue
            if job_id in self._cancel_requested:
                await self._end(job_id, "cancelled", error=CANCELLED)
                continue
            await self._run(view)

    async def _run(self, view: JobView) -> None:
        job_id = view.job_id
        self._emit(job_id, "started", {})

        def emit(type_: str, data: dict[str, Any]) -> None:
            self._emit(job_id, type_, data)

        started = time.perf_counter()
        try:
            request = ProveJobRequest.model_validate(view.request)
        except ValueError as exc:
            await self._end(job_id, "failed", error=f"the stored request is no longer valid: {exc}")
            return
        task = asyncio.create_task(self.runner(request, emit))
        self._running[job_id] = task
        try:
            outcome = await task
        except asyncio.CancelledError:
            if self._stopping:
                raise  # the job stays 'running' in the store and is requeued on the next start
            await self._end(job_id, "cancelled", error=CANCELLED)
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
        except Exception as exc:
            await self._end(job_id, "failed", error=f"{type(exc).__name__}: {exc}")
        else:
            await self._end(job_id, outcome.status, result=outcome.result)
        finally:
            self._running.pop(job_id, None)
            self._durations.append(time.perf_counter() - started)
