"""One SQLite connection owned by a dedicated thread, with group commit: storage off the event loop.

The job server and the evaluation recorder write small rows very often (a job, an event, an attempt). Calling
SQLite from a coroutine blocks the event loop for every commit (and, on a busy database, for up to the busy
timeout). :class:`SQLiteWriter` runs every operation on its own thread instead, in the order they were handed in:

* ``await writer.run(fn, *args)`` runs ``fn(conn, *args)`` there and returns its result once the transaction that
  holds it is **committed** (the loop keeps serving other requests meanwhile);
* ``writer.post(fn, *args)`` queues a write and returns at once (for events and attempts whose caller cannot wait;
  it is committed with the next batch, in order with everything else);
* ``writer.call(fn, *args)`` is the blocking form for code that is not on an event loop (CLI, reports).

Operations that are waiting when the thread becomes free are run as one batch in one transaction (``BEGIN
IMMEDIATE`` when the batch writes), each inside a ``SAVEPOINT`` so a failing operation rolls back only itself. So
under load many submissions share one commit, and nothing is acknowledged before its commit returned.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from malot.errors import MalotError

__all__ = ["SQLiteWriter", "StorageClosedError"]

T = TypeVar("T")
log = logging.getLogger(__name__)

#: At most this many operations share one transaction (bounds how long one commit holds the write lock).
MAX_BATCH = 512


class StorageClosedError(MalotError):
    """The storage thread was closed; nothing more can be written."""


@dataclass(slots=True)
class _Op:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    write: bool
    future: concurrent.futures.Future[Any] | None = field(default=None)


class SQLiteWriter:
    """Runs operations on one SQLite connection in a dedicated thread; see the module docstring.

    ``connect`` opens the connection (it runs on the thread; its exceptions are raised by the constructor). An
    operation whose awaiting coroutine is cancelled before the operation started is dropped, not run.
    """

    def __init__(self, connect: Callable[[], sqlite3.Connection], *, name: str = "malot-sqlite") -> None:
        self._ops: queue.SimpleQueue[_Op | None] = queue.SimpleQueue()
        self._closed = False
        self._lock = threading.Lock()
        self.failed_posts = 0
        """Posted operations that raised (logged; their callers were not waiting)."""
        self.batches = 0
        """Transactions committed so far (a batch holds every operation waiting when the thread became free)."""
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._main, args=(connect, ready), name=name, daemon=True)
        self._thread.start()
        ready.result()

    # ------------------------------------------------------------------ handing in work

    def _put(self, op: _Op) -> None:
        with self._lock:
            if self._closed:
                raise StorageClosedError("the storage thread is closed")
            self._ops.put(op)

    def submit(self, fn: Callable[..., T], *args: Any, write: bool = True) -> concurrent.futures.Future[T]:
        """Queue ``fn(conn, *args)``; the future resolves after the commit of its batch."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._put(_Op(fn, args, write, future))
        return future

    async def run(self, fn: Callable[..., T], *args: Any, write: bool = True) -> T:
        """Run ``fn(conn, *args)`` on the storage thread; returns once its transaction is committed."""
        return await asyncio.wrap_future(self.submit(fn, *args, write=write))

    def call(self, fn: Callable[..., T], *args: Any, write: bool = True) -> T:
        """Blocking :meth:`run`, for code that is not on an event loop."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("SQLiteWriter.call from the storage thread would deadlock")
        return self.submit(fn, *args, write=write).result()

    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue a write and return at once; it commits with the next batch, in order with all other operations."""
        self._put(_Op(fn, args, True))

    async def flush(self) -> None:
        """Wait until everything handed in so far is committed."""
        await self.run(_noop, write=False)

    def close(self) -> None:
        """Commit what is queued, close the connection and stop the thread (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._ops.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join()

    # ------------------------------------------------------------------ the thread

    def _main(self, connect: Callable[[], sqlite3.Connection], ready: concurrent.futures.Future[None]) -> None:
        try:
            conn = connect()
            conn.isolation_level = None  # transactions are begun and committed here, explicitly
        except BaseException as exc:
            ready.set_exception(exc)
            return
        ready.set_result(None)
        try:
            stop = False
            while not stop:
                first = self._ops.get()
                if first is None:
                    break
                batch = [first]
                while len(batch) < MAX_BATCH:
                    try:
                        op = self._ops.get_nowait()
                    except queue.Empty:
                        break
                    if op is None:
                        stop = True
                        break
                    batch.append(op)
                self._run_batch(conn, batch)
        finally:
            conn.close()

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Op]) -> None:
        # an operation whose waiter gave up (a cancelled request) before it started is dropped
        batch = [op for op in batch if op.future is None or op.future.set_running_or_notify_cancel()]
        if not batch:
            return
        writes = any(op.write for op in batch)
        outcomes: list[tuple[_Op, Any, BaseException | None]] = []
        try:
            if writes:
                conn.execute("BEGIN IMMEDIATE")
            for op in batch:
                outcomes.append(self._run_one(conn, op, savepoint=writes))
            if writes:
                conn.execute("COMMIT")
                self.batches += 1
        except BaseException as exc:  # BEGIN or COMMIT failed: nothing of this batch is stored
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            log.error("a storage transaction failed: %s", exc)
            outcomes = [(op, None, exc) for op in batch]
        for op, value, error in outcomes:
            if op.future is None:
                if error is not None:
                    self.failed_posts += 1
                    log.error("a queued storage write failed: %s: %s", type(error).__name__, error)
            elif error is not None:
                op.future.set_exception(error)
            else:
                op.future.set_result(value)

    @staticmethod
    def _run_one(conn: sqlite3.Connection, op: _Op, *, savepoint: bool) -> tuple[_Op, Any, BaseException | None]:
        if savepoint:
            conn.execute("SAVEPOINT op")
        try:
            value = op.fn(conn, *op.args)
        except Exception as exc:
            if savepoint:
                conn.execute("ROLLBACK TO op")
                conn.execute("RELEASE op")
            return op, None, exc
        if savepoint:
            conn.execute("RELEASE op")
        return op, value, None


def _noop(conn: sqlite3.Connection) -> None:
    return None
