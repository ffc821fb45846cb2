"""Durable job storage for the HTTP server: SQLite in WAL mode, one row per job and one per event.

Every state change is committed before it is acknowledged, so a crash or restart loses no accepted job: on start
the server re-queues jobs that were queued or running (``requeue_unfinished``).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from malot.server.models import JobEvent, JobView

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


class JobStore:
    """Jobs and their event streams in one SQLite file (``:memory:`` for tests)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def create(self, job_id: str, request: dict[str, Any]) -> JobView:
        """Insert a queued job."""
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT INTO jobs (id, status, request, created, updated) VALUES (?, 'queued', ?, ?, ?)",
                (job_id, json.dumps(request), now, now),
            )
        return JobView(job_id=job_id, status="queued", request=request, created=now, updated=now)

    def set_status(
        self, job_id: str, status: str, *, result: dict[str, Any] | None = None, error: str | None = None
    ) -> None:
        """Record a state change (and the result or error of a finished job)."""
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET status = ?, result = COALESCE(?, result), error = COALESCE(?, error), updated = ? "
                "WHERE id = ?",
                (status, json.dumps(result) if result is not None else None, error, time.time(), job_id),
            )

    def get(self, job_id: str) -> JobView | None:
        """A job by id, or ``None``."""
        with self._lock:
            row = self._db.execute(
                "SELECT id, status, request, result, error, created, updated FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
        return _view(row) if row else None

    def by_status(self, *statuses: str) -> list[JobView]:
        """Jobs in the given states, oldest first."""
        marks = ",".join("?" for _ in statuses)
        with self._lock:
            rows = self._db.execute(
                f"SELECT id, status, request, result, error, created, updated FROM jobs WHERE status IN ({marks}) "
                "ORDER BY created",
                statuses,
            ).fetchall()
        return [_view(r) for r in rows]

    def count(self, *statuses: str) -> int:
        """How many jobs are in the given states."""
        marks = ",".join("?" for _ in statuses)
        with self._lock:
            (n,) = self._db.execute(f"SELECT COUNT(*) FROM jobs WHERE status IN ({marks})", statuses).fetchone()
        return int(n)

    def add_event(self, job_id: str, type_: str, data: dict[str, Any]) -> JobEvent:
        """Append an event to a job's stream and return it with its sequence number."""
        now = time.time()
        with self._lock:
            (last,) = self._db.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM events WHERE job_id = ?", (job_id,)
            ).fetchone()
            seq = int(last) + 1
            self._db.execute(
                "INSERT INTO events (job_id, seq, type, data, time) VALUES (?, ?, ?, ?, ?)",
                (job_id, seq, type_, json.dumps(data, default=str), now),
            )
        return JobEvent(seq=seq, type=type_, data=data, time=now)

    def events(self, job_id: str, after: int = 0) -> list[JobEvent]:
        """A job's events with sequence numbers above ``after``."""
        with self._lock:
            rows = self._db.execute(
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
