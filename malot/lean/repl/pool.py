"""A pool of REPL processes with header reuse, limits and recovery; implements the ``Verifier`` protocol.

- Header reuse: each snippet is split into header and body; a REPL that elaborated a header keeps its env id and
  serves later bodies on it. Idle REPLs that already hold a snippet's header are preferred; the pool keeps an LRU
  of at most ``max_headers`` headers; ``prewarm`` headers are elaborated when a REPL starts; with ``pickle_dir``,
  a header's environment is pickled once and unpickled by other REPLs instead of re-elaborated.
- Limits: a wall timeout per check (a header's one-off elaboration is bounded by ``start_timeout``), an
  address-space cap per process (RLIMIT_AS), ``max_commands`` per process before it is recycled, and a bounded
  wait queue (``queue_size``) that rejects with :class:`PoolQueueFullError`.
- Interactive sessions (:meth:`ReplPool.open_session`): a proof session is pinned to one REPL (its proof states
  live there) without owning it: each of its commands waits for that REPL like any check waits for a REPL, so
  checks and other sessions keep their share. Checks prefer unpinned REPLs; a pinned REPL is not recycled while
  pinned (its states would be lost), only replaced when it fails.
- Recovery: a REPL that crashes, hangs (timeout), prints garbage or whose check is cancelled is killed and replaced
  in the background, with exponential backoff while replacements keep failing. The snippet gets a result with
  status ``crash``/``timeout``/``error``; the pool returns to full size.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from malot.errors import BackendUnavailableError, LeanError, VerifierError
from malot.lean.base import CheckResult, LeanMessage, Position, Snippet, SorryInfo
from malot.lean.cputime import process_tree_cpu
from malot.lean.messages import message_from_json
from malot.lean.repl.header import split_header
from malot.lean.repl.process import ReplCrashedError, ReplProcess, ReplProtocolError, ReplTimeoutError
from malot.lean.repl.protocol import (
    CommandResponse,
    PickleEnvironment,
    ReplError,
    ReplMessage,
    ReplSorry,
    UnpickleEnvironment,
)
from malot.lean.sandbox import SandboxKind, resolve_sandbox
from malot.resources import AsyncResource

if TYPE_CHECKING:
    from malot.config import LeanSettings
    from malot.lean.final_check import FinalChecker
    from malot.lean.repl.session import ReplProofSession

__all__ = ["PoolQueueFullError", "ReplPool", "default_pool_size"]

log = logging.getLogger(__name__)


class PoolQueueFullError(VerifierError):
    """More checks are waiting than the pool's queue allows."""


def default_pool_size() -> int:
    """Cores - 1, at least 1."""
    return max(1, (os.cpu_count() or 2) - 1)


@dataclass(eq=False)
class _Worker:
    slot: int
    process: ReplProcess
    headers: dict[str, int] = field(default_factory=dict)
    pins: int = 0
    waiters: deque[tuple[asyncio.Future[bool], bool]] = field(default_factory=deque)  # (future, shared)
    last_session: bool = False
    session_users: int = 0  # session commands holding it together (pipelined)
    retired: bool = False


def _shift(pos: Position | None, offset: int) -> Position | None:
    return None if pos is None else Position(line=pos.line + offset, column=pos.column)


def _message(m: ReplMessage, offset: int) -> LeanMessage:
    msg = message_from_json(m.wire())
    return msg.model_copy(update={"pos": _shift(msg.pos, offset), "end_pos": _shift(msg.end_pos, offset)})


def _sorry(s: ReplSorry, offset: int) -> SorryInfo:
    info = SorryInfo.model_validate(s.wire())
    return info.model_copy(update={"pos": _shift(info.pos, offset), "end_pos": _shift(info.end_pos, offset)})


class ReplPool(AsyncResource):
    """REPL processes serving :meth:`check`; use as ``async with ReplPool(argv, size=3) as pool``."""

    name = "repl"

    def __init__(
        self,
        argv: Sequence[str],
        *,
        size: int | None = None,
        cwd: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 300.0,
        start_timeout: float = 600.0,
        memory_limit_mb: int | None = None,
        max_commands: int = 200,
        queue_size: int = 10_000,
        prewarm: Sequence[str] = (),
        pickle_dir: str | Path | None = None,
        sandbox: str = "off",
        max_headers: int = 8,
        backoff: tuple[float, float] = (0.05, 5.0),
    ) -> None:
        self.argv = list(argv)
        self.size = size or default_pool_size()
        self.cwd = cwd
        self.env = env
        self.timeout = timeout
        self.start_timeout = start_timeout
        self.memory_limit_mb = memory_limit_mb
        self.max_commands = max_commands
        self.queue_size = queue_size
        self.prewarm = list(prewarm)
        self.pickle_dir = Path(pickle_dir) if pickle_dir is not None else None
        self.sandbox_kind: SandboxKind = resolve_sandbox(sandbox)
        self.sandboxed = self.sandbox_kind == "bwrap"
        #: the environment-level final check (set by malot.lean.select.load_verifier from the [lean] settings)
        self.final_checker: FinalChecker | None = None
        self.max_headers = max_headers
        self.backoff = backoff
        self._idle: list[_Worker] = []
        self._cond = asyncio.Condition()
        self._pending = 0
        self._workers: dict[int, _Worker] = {}
        self._replacing: set[asyncio.Task[None]] = set()
        self._headers: OrderedDict[str, None] = OrderedDict()
        self._closed = False
        self._streaks: dict[int, int] = {}
        self._check_waiting = 0
        self.restarts = 0
        self.recycled = 0
        self.backoff_waits: list[float] = []

    @classmethod
    def from_settings(cls, settings: LeanSettings, *, size: int | None = None) -> ReplPool:
        """A pool running the REPL of ``settings.project`` (``lake env <repl>`` inside the project)."""
        import shutil

        from malot.lean.select import repl_binary

        if settings.project is None:
            raise BackendUnavailableError("the REPL pool needs a Lake project", hint="set --project / MALOT_PROJECT")
        project = settings.project.expanduser().resolve()
        binary = repl_binary(project)
        lake = shutil.which("lake")
        if binary is None or lake is None:
            raise BackendUnavailableError(
                f"the REPL in {project} is not built or lake is missing", hint=f"cd {project} && lake build repl"
            )
        return cls(
            [lake, "env", str(binary)],
            size=size or settings.pool_size,
            cwd=project,
            timeout=settings.timeout_s,
            memory_limit_mb=settings.memory_limit_mb,
            max_commands=settings.max_commands_per_process,
            queue_size=settings.queue_size,
            prewarm=settings.prewarm,
            pickle_dir=settings.pickle_dir,
            sandbox=settings.sandbox,
        )

    def describe(self) -> str:
        """One line: what runs, how many, which limits."""
        return (
            f"REPL pool: {' '.join(self.argv)} x{self.size}, timeout {self.timeout:g}s, "
            f"memory {self.memory_limit_mb or 'unlimited'} MB, recycle after {self.max_commands} commands, "
            f"sandbox={self.sandbox_kind}"
        )

    # --- lifecycle --------------------------------------------------------------------------------------------

    async def open(self) -> None:
        """Start the pool when entered with ``async with`` (see :meth:`start`)."""
        await self.start()

    async def start(self) -> None:
        """Start every REPL (and prewarm it); raises if the first ones cannot start at all."""
        results = await asyncio.gather(*(self._spawn(i) for i in range(self.size)), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        for r in results:
            if isinstance(r, _Worker):
                self._workers[r.slot] = r
                self._idle.append(r)
        if failures and not self._idle:
            await self.aclose()
            raise BackendUnavailableError(
                f"no REPL process could start: {failures[0]}", hint="check the REPL command ('malot doctor')"
            )
        for i in range(self.size):
            if i not in self._workers:
                self._schedule_replacement(i)

    async def aclose(self) -> None:
        """Kill every REPL and stop pending replacements (and close the final checker, if any)."""
        self._closed = True
        if self.final_checker is not None:
            await self.final_checker.aclose()
        for task in list(self._replacing):
            task.cancel()
        for task in list(self._replacing):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await asyncio.gather(*(w.process.kill() for w in self._workers.values()), return_exceptions=True)
        for w in self._workers.values():
            self._drop_waiters(w)
        self._idle.clear()
        self._workers.clear()

    async def wait_ready(self, timeout: float = 60.0) -> None:  # noqa: ASYNC109
        """Wait until every slot has a running REPL again (after crashes and recycling)."""
        deadline = time.monotonic() + timeout
        while self._replacing and time.monotonic() < deadline:
            await asyncio.wait(set(self._replacing), timeout=max(0.0, deadline - time.monotonic()))

    @property
    def alive_count(self) -> int:
        """How many slots have a running REPL now."""
        return sum(1 for w in self._workers.values() if w.process.alive)

    def pids(self) -> list[int]:
        """Process ids of the running REPLs (for tests and ``malot doctor``)."""
        return [w.process.pid for w in self._workers.values() if w.process.pid is not None]

    async def _spawn(self, slot: int) -> _Worker:
        writable = [self.pickle_dir] if self.pickle_dir is not None else []
        process = ReplProcess(
            self.argv,
            cwd=self.cwd,
            env=self.env,
            memory_limit_mb=self.memory_limit_mb,
            sandbox=self.sandbox_kind,
            writable=writable,
            start_timeout=self.start_timeout,
        )
        await process.start()
        worker = _Worker(slot, process)
        try:
            for header in self.prewarm:
                await self._header_env(worker, header, self.start_timeout)
        except BaseException:
            await process.kill()
            raise
        return worker

    def _schedule_replacement(self, slot: int, delay: float = 0.0) -> None:
        if self._closed:
            return
        task = asyncio.get_running_loop().create_task(self._replace(slot, delay))
        self._replacing.add(task)
        task.add_done_callback(self._replacing.discard)

    async def _replace(self, slot: int, delay: float = 0.0) -> None:
        while not self._closed:
            if delay:
                self.backoff_waits.append(delay)
                await asyncio.sleep(delay)
            try:
                worker = await self._spawn(slot)
            except Exception as exc:  # any failure to start is retried, with a growing delay
                delay = min(self.backoff[1], max(self.backoff[0], delay * 2))
                log.warning("REPL slot %d failed to start (%s); retrying in %.2fs", slot, exc, delay)
                continue
            if self._closed:
                await worker.process.kill()
                return
            self._workers[slot] = worker
            self.restarts += 1
            async with self._cond:
                self._idle.append(worker)
                self._cond.notify_all()  # checks and sessions waiting for a running REPL
            return

    # --- scheduling -------------------------------------------------------------------------------------------

    async def _acquire(self, header: str) -> _Worker:
        async with self._cond:
            self._check_waiting += 1
            try:
                while not self._idle:
                    await self._cond.wait()
            finally:
                self._check_waiting -= 1
            best = next((w for w in self._idle if header in w.headers and not w.pins), None)
            if best is None:
                best = next((w for w in self._idle if header in w.headers), None)
            if best is None:
                best = min(self._idle, key=lambda w: (w.pins > 0, len(w.waiters), w.pins, len(w.headers)))
            self._idle.remove(best)
            best.last_session = False
            return best

    async def _acquire_worker(self, worker: _Worker, *, shared: bool = False) -> bool:
        """Take ``worker`` (a session's pinned REPL), waiting in its FIFO; False when it failed and was replaced.

        ``shared``: a session command, which may join other session commands already running there (the REPL
        process pipelines them) unless a check is waiting for a REPL. When the worker is released and both session
        commands and a check are waiting, they take turns.
        """
        if self._closed or self._workers.get(worker.slot) is not worker or worker.retired or not worker.process.alive:
            return False
        if worker in self._idle and not worker.waiters:
            self._idle.remove(worker)
            worker.last_session = True
            worker.session_users = 1 if shared else 0
            return True
        if shared and worker.session_users > 0 and not worker.waiters and self._check_waiting == 0:
            worker.session_users += 1
            return True
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        worker.waiters.append((future, shared))
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled() and future.result():
                self._give_back_nowait(worker, shared)  # handed over just as we were cancelled
            raise

    def _hand_over(self, worker: _Worker) -> bool:
        """Give a released ``worker`` to its next waiting session commands (all the shared ones at the head of the
        queue, or one exclusive user), unless it is a check's turn; True if given."""
        while worker.waiters and worker.waiters[0][0].done():
            worker.waiters.popleft()
        if not worker.waiters or (self._check_waiting > 0 and worker.last_session):
            return False
        worker.last_session = True
        future, shared = worker.waiters.popleft()
        future.set_result(True)
        worker.session_users = 1 if shared else 0
        while shared and worker.waiters and worker.waiters[0][1]:
            future, _ = worker.waiters.popleft()
            if not future.done():
                future.set_result(True)
                worker.session_users += 1
        return True

    async def _release_shared(self, worker: _Worker, healthy: bool) -> None:
        """A session command is done with ``worker``; the last one of a group releases it."""
        if worker.retired:
            return
        if not healthy:
            worker.retired = True  # the process is killed once; the other commands on it fail with it
            worker.session_users = 0
            await self._release(worker, False)
            return
        worker.session_users -= 1
        if worker.session_users <= 0:
            worker.session_users = 0
            await self._release(worker, True)

    def _give_back_nowait(self, worker: _Worker, shared: bool = False) -> None:
        if shared:
            worker.session_users -= 1
            if worker.session_users > 0:
                return
            worker.session_users = 0
        if self._hand_over(worker):
            return
        self._idle.append(worker)
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._notify())
        self._replacing.add(task)  # kept alive and cancelled on close with the other background tasks
        task.add_done_callback(self._replacing.discard)

    async def _notify(self) -> None:
        async with self._cond:
            self._cond.notify()

    @staticmethod
    def _drop_waiters(worker: _Worker) -> None:
        while worker.waiters:
            future, _ = worker.waiters.popleft()
            if not future.done():
                future.set_result(False)

    async def _pin(self) -> _Worker:
        """Pin a REPL for a session: the running one with the fewest pins (waiting for one to run if none does)."""
        async with self._cond:
            while True:
                if self._closed:
                    raise VerifierError("the REPL pool is closed", hint="use it inside 'async with'")
                alive = [w for w in self._workers.values() if w.process.alive]
                if alive:
                    worker = min(alive, key=lambda w: (w.pins, w not in self._idle, w.slot))
                    worker.pins += 1
                    return worker
                await self._cond.wait()

    def _unpin(self, worker: _Worker) -> None:
        worker.pins = max(0, worker.pins - 1)

    def open_session(self, *, timeout: float | None = None) -> ReplProofSession:
        """A proof session (:class:`malot.lean.session.ProofSession`) pinned to one REPL of this pool."""
        from malot.lean.repl.session import ReplProofSession

        return ReplProofSession(self, timeout=timeout if timeout is not None else self.timeout)

    async def _release(self, worker: _Worker, healthy: bool, *, failed: bool | None = None) -> None:
        """Return ``worker`` to the idle list, or kill and replace it (after a failure, or ``max_commands``).

        A slot whose fresh processes keep failing on their first commands (a crash loop) waits before each
        replacement, the wait doubling from ``backoff[0]`` up to ``backoff[1]``.
        """
        if self._closed:
            await worker.process.kill()
            self._drop_waiters(worker)
            return
        if healthy:
            self._streaks[worker.slot] = 0
        keep = worker.process.commands_sent < self.max_commands or worker.pins > 0
        if healthy and worker.process.alive and keep:
            if self._hand_over(worker):
                return
            async with self._cond:
                self._idle.append(worker)
                self._cond.notify()
            return
        failed = not healthy if failed is None else failed
        if not failed:
            self.recycled += 1
        elif worker.process.commands_sent <= 2:
            self._streaks[worker.slot] = self._streaks.get(worker.slot, 0) + 1
        else:
            self._streaks[worker.slot] = 1
        streak = self._streaks.get(worker.slot, 0)
        delay = 0.0 if streak <= 1 else min(self.backoff[1], self.backoff[0] * 2 ** (streak - 2))
        await worker.process.kill()
        self._drop_waiters(worker)  # session commands waiting on this worker learn that it is gone
        self._schedule_replacement(worker.slot, delay)

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[ReplProcess]:
        """Borrow one REPL for interactive use (commands, tactics, proof states); it is recycled afterwards."""
        worker = await self._acquire("")
        try:
            yield worker.process
        finally:
            worker.headers.clear()
            await self._release(worker, healthy=False, failed=False)

    # --- checking ---------------------------------------------------------------------------------------------

    async def check(self, snippets: Sequence[Snippet], timeout: float | None = None) -> list[CheckResult]:  # noqa: ASYNC109
        """Check every snippet on the pool; results in input order. Raises if the wait queue would overflow."""
        if self._closed:
            raise VerifierError("the REPL pool is closed", hint="use it inside 'async with'")
        waiting = self._pending + len(snippets) - self.size
        if waiting > self.queue_size:
            raise PoolQueueFullError(
                f"the REPL pool's wait queue is full ({self._pending} checks pending, {len(snippets)} more asked, "
                f"queue size {self.queue_size})",
                hint="send smaller batches, or raise [lean] queue_size / pool_size",
            )
        self._pending += len(snippets)
        try:
            return list(await asyncio.gather(*(self._check_one(s, timeout or self.timeout) for s in snippets)))
        finally:
            self._pending -= len(snippets)

    def _remember_header(self, header: str) -> None:
        self._headers[header] = None
        self._headers.move_to_end(header)
        while len(self._headers) > self.max_headers:
            old, _ = self._headers.popitem(last=False)
            for w in self._workers.values():
                w.headers.pop(old, None)

    async def _header_env(self, worker: _Worker, header: str, timeout: float) -> int | CommandResponse:  # noqa: ASYNC109
        """The env id of ``header`` on ``worker`` (elaborating, or unpickling, it if needed).

        Returns the REPL's response instead when the header itself has errors.
        """
        if header in worker.headers:
            if header in self._headers:
                self._headers.move_to_end(header)
            return worker.headers[header]
        pickled = self._pickle_path(header)
        if pickled is not None and pickled.is_file():
            reply = await worker.process.send(UnpickleEnvironment(unpickle_env_from=str(pickled)), timeout)
            if isinstance(reply, CommandResponse) and reply.env is not None:
                worker.headers[header] = reply.env
                self._remember_header(header)
                return reply.env
        response = await worker.process.command(header, timeout=timeout)
        if response.env is None or any(m.severity == "error" for m in response.messages):
            return response
        worker.headers[header] = response.env
        self._remember_header(header)
        if pickled is not None and not pickled.is_file():
            pickled.parent.mkdir(parents=True, exist_ok=True)
            reply = await worker.process.send(PickleEnvironment(pickle_to=str(pickled), env=response.env), timeout)
            if isinstance(reply, ReplError):
                log.warning("pickling a header failed: %s", reply.message)
        return response.env

    def _pickle_path(self, header: str) -> Path | None:
        if self.pickle_dir is None:
            return None
        return self.pickle_dir / (hashlib.sha256(header.encode()).hexdigest()[:20] + ".olean")

    async def check_on(
        self,
        worker: _Worker,
        snippets: Sequence[Snippet],
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> list[CheckResult]:
        """:meth:`check` on ``worker`` (a session's pinned REPL, so the check does not take another REPL's turn);
        on any REPL when that one has been replaced."""
        if self._closed:
            raise VerifierError("the REPL pool is closed", hint="use it inside 'async with'")
        return list(await asyncio.gather(*(self._check_one(s, timeout or self.timeout, worker) for s in snippets)))

    async def _check_one(self, snippet: Snippet, timeout: float, prefer: _Worker | None = None) -> CheckResult:  # noqa: ASYNC109
        header, body, offset = split_header(snippet.code)
        if prefer is not None and await self._acquire_worker(prefer):
            worker = prefer
        else:
            worker = await self._acquire(header)
        healthy = False
        started = time.perf_counter()
        try:
            try:
                result = await self._run(worker, snippet.id, header, body, offset, timeout)
                healthy = True
            except ReplTimeoutError as exc:
                result = CheckResult(id=snippet.id, status="timeout", error=str(exc))
            except ReplCrashedError as exc:
                result = CheckResult(id=snippet.id, status="crash", error=str(exc))
            except ReplProtocolError as exc:
                result = CheckResult(id=snippet.id, status="error", error=str(exc))
            except LeanError as exc:  # the REPL refused a command (e.g. unknown environment): state is suspect
                result = CheckResult(id=snippet.id, status="error", error=str(exc))
        finally:
            await self._release(worker, healthy)
        result.time_s = time.perf_counter() - started
        result.backend = self.name
        return result

    async def _run(
        self,
        worker: _Worker,
        sid: str,
        header: str,
        body: str,
        offset: int,
        timeout: float,  # noqa: ASYNC109
    ) -> CheckResult:
        env: int | None = None
        pid = worker.process.pid
        cpu0 = process_tree_cpu(pid) if pid is not None else None
        if header:
            # a header is set-up work done once per process (import Mathlib takes long): bounded by start_timeout
            got = await self._header_env(worker, header, max(timeout, self.start_timeout))
            if isinstance(got, CommandResponse):
                return self._to_result(sid, got, 0)
            env = got
        response = await worker.process.command(body, env=env, timeout=timeout)
        result = self._to_result(sid, response, offset)
        cpu1 = process_tree_cpu(pid) if pid is not None and cpu0 is not None else None
        if cpu0 is not None and cpu1 is not None:
            result.cpu_s = max(0.0, cpu1 - cpu0)
        return result

    @staticmethod
    def _to_result(sid: str, response: CommandResponse, offset: int) -> CheckResult:
        return CheckResult(
            id=sid,
            status="ok",
            messages=[_message(m, offset) for m in response.messages],
            sorries=[_sorry(s, offset) for s in response.sorries],
        )
