"""Durable job storage for the HTTP server: SQLite in WAL mode, one row per job and one per event, written off the
event loop by a :class:`~malot.sqlite_writer.SQLiteWriter` thread (many submissions share one commit under load).

What is durable when (a ``kill -9`` of the server loses nothing below; ``synchronous=NORMAL`` skips the fsync, so
only a power failure or OS crash could drop the last commits):

* a job is committed, with its ``queued`` event, before :meth:`JobStore.create` returns, i.e. before the server
  answers ``202``;
* a job's final state, its result and every event before it are committed before :meth:`JobStore.finish` returns;
* the events of a job in progress are queued with :meth:`JobStore.post_event` and committed with the next batch
  (the writer is rarely more than one commit behind); a kill can drop the last of them, and the job, still
  ``queued`` or ``running`` in the store, runs again after the restart (:meth:`JobStore.requeue_unfinished`).
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from malot.server.models import JobEvent, JobView
from malot.sqlite_writer import SQLiteWriter

__all__ = ["JobStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    request TEXT NOT NULL,
    result TEXT,
    error TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    job_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    time REAL NOT NULL,
    PRIMARY KEY (job_id, seq)
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
"""

_COLUMNS = "id, status, request, result, error, created, updated"


class JobStore:
    """Jobs and their event streams in one SQLite file (``:memory:`` for tests); every method but
    :meth:`post_event` and :meth:`close` is a coroutine that runs on the storage thread."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._writer = SQLiteWriter(self._connect, name="malot-jobstore")

    def _connect(self) -> sqlite3.Connection:
        # the busy timeout only holds up the storage thread, never the event loop
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_SCHEMA)
        return conn

    @property
    def commits(self) -> int:
        """Transactions committed so far (fewer than writes: concurrent writes share a commit)."""
        return self._writer.batches

    def close(self) -> None:
        """Commit what is queued and close the database."""
        self._writer.close()

    async def flush(self) -> None:
        """Wait until every queued event is committed."""
        await self._writer.flush()

    async def create(self, job_id: str, request: dict[str, Any]) -> JobView:
        """Insert a queued job and its ``queued`` event (sequence 1); returns once committed."""
        return await self._writer.run(_create, job_id, request, time.time())

    async def claim(self, job_id: str) -> JobView | None:
        """Move a queued job to ``running``; ``None`` when it is no longer queued (cancelled, or unknown)."""
        return await self._writer.run(_claim, job_id, time.time())

    async def finish(
        self, job_id: str, status: str, *, result: dict[str, Any] | None = None, error: str | None = None
    ) -> None:
        """Record a job's final state (and result or error); returns once committed, with every earlier event."""
        await self._writer.run(_set_status, job_id, status, result, error, time.time(), None)

    async def cancel_if_queued(self, job_id: str, error: str) -> bool:
        """Mark a still-queued job ``cancelled``; ``False`` when it is not queued any more."""
        return await self._writer.run(_set_status, job_id, "cancelled", None, error, time.time(), "queued")

    async def requeue_unfinished(self) -> list[tuple[JobView, int]]:
        """Put jobs left ``running`` by a previous process back to ``queued``. Returns every unfinished job, oldest
        first, as it was found (status ``queued`` or ``running``) with the sequence number of its last event."""
        return await self._writer.run(_requeue, time.time())

    def post_event(self, job_id: str, seq: int, type_: str, data: dict[str, Any]) -> JobEvent:
        """Queue an event with its sequence number (the caller numbers a job's events); it is committed with the
        next batch. Returns the event as stored."""
        event = JobEvent(seq=seq, type=type_, data=data, time=time.time())
        self._writer.post(_insert_event, job_id, seq, type_, json.dumps(data, default=str), event.time)
        return event

    async def get(self, job_id: str) -> JobView | None:
        """A job by id, or ``None``."""
        return await self._writer.run(_get, job_id, write=False)

    async def count(self, *statuses: str) -> int:
        """How many jobs are in the given states."""
        return await self._writer.run(_count, statuses, write=False)

    async def events(self, job_id: str, after: int = 0) -> list[JobEvent]:
        """A job's events with sequence numbers above ``after`` (including every event queued before the call)."""
        return await self._writer.run(_events, job_id, after, write=False)


def _create(conn: sqlite3.Connection, job_id: str, request: dict[str, Any], now: float) -> JobView:
    conn.execute(
        "INSERT INTO jobs (id, status, request, created, updated) VALUES (?, 'queued', ?, ?, ?)",
        (job_id, json.dumps(request), now, now),
    )
    _insert_event(conn, job_id, 1, "queued", "{}", now)
    return JobView(job_id=job_id, status="queued", request=request, created=now, updated=now)


def _claim(conn: sqlite3.Connection, job_id: str, now: float) -> JobView | None:
    cur = conn.execute("UPDATE jobs SET status='running', updated=? WHERE id=? AND status='queued'", (now, job_id))
    return _get(conn, job_id) if cur.rowcount == 1 else None


def _set_status(
    conn: sqlite3.Connection,
    job_id: str,
    status: str,
    result: dict[str, Any] | None,
    error: str | None,
    now: float,
    only_from: str | None,
) -> bool:
    sql = "UPDATE jobs SET status=?, result=COALESCE(?, result), error=COALESCE(?, error), updated=? WHERE id=?"
    args: tuple[Any, ...] = (status, json.dumps(result) if result is not None else None, error, now, job_id)
    if only_from is not None:
        sql += " AND status=?"
        args += (only_from,)
    return conn.execute(sql, args).rowcount == 1


def _requeue(conn: sqlite3.Connection, now: float) -> list[tuple[JobView, int]]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM jobs WHERE status IN ('queued', 'running') ORDER BY created"
    ).fetchall()
    conn.execute("UPDATE jobs SET status='queued', updated=? WHERE status='running'", (now,))
    out = []
    for row in rows:
        (last,) = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events WHERE job_id=?", (row[0],)).fetchone()
        out.append((_view(row), int(last)))
    return out


def _insert_event(conn: sqlite3.Connection, job_id: str, seq: int, type_: str, data: str, now: float) -> None:
    conn.execute(
        "INSERT INTO events (job_id, seq, type, data, time) VALUES (?, ?, ?, ?, ?)", (job_id, seq, type_, data, now)
    )


def _get(conn: sqlite3.Connection, job_id: str) -> JobView | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return _view(row) if row else None


def _count(conn: sqlite3.Connection, statuses: tuple[str, ...]) -> int:
    marks = ",".join("?" for _ in statuses)
    (n,) = conn.execute(f"SELECT COUNT(*) FROM jobs WHERE status IN ({marks})", statuses).fetchone()
    return int(n)


def _events(conn: sqlite3.Connection, job_id: str, after: int) -> list[JobEvent]:
    rows = conn.execute(
        "SELECT seq, type, data, time FROM events WHERE job_id = ? AND seq > ? ORDER BY seq", (job_id, after)
    ).fetchall()
    return [JobEvent(seq=s, type=t, data=json.loads(d), time=tm) for s, t, d, tm in rows]


def _view(row: tuple[Any, ...]) -> JobView:
    job_id, status, request, result, error, created, updated = row
    return JobView(
        job_id=job_id,
        status=status,
        request=json.loads(request),
        result=json.loads(result) if result else None,
        error=error,
        created=created,
        updated=updated,
    )
