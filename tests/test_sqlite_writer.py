"""The SQLite storage thread: order, atomic operations, group commit, errors, cancellation, close."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from malot.sqlite_writer import SQLiteWriter, StorageClosedError


def _writer(path: Path) -> SQLiteWriter:
    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, timeout=30.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v TEXT)")
        return conn

    return SQLiteWriter(connect)


def _insert(conn: sqlite3.Connection, k: int, v: str) -> int:
    conn.execute("INSERT INTO t VALUES (?, ?)", (k, v))
    return k


def _insert_then_fail(conn: sqlite3.Connection, k: int) -> None:
    conn.execute("INSERT INTO t VALUES (?, 'half')", (k,))
    raise ValueError("second half failed")


def _rows(conn: sqlite3.Connection) -> list[tuple[int, str]]:
    return [(int(k), str(v)) for k, v in conn.execute("SELECT k, v FROM t ORDER BY k")]


def test_operations_run_in_order_on_one_thread_and_fail_alone(tmp_path: Path) -> None:
    db = _writer(tmp_path / "db.sqlite")
    threads: set[str] = set()

    def where(conn: sqlite3.Connection) -> None:
        threads.add(threading.current_thread().name)

    db.post(_insert, 1, "posted")
    with pytest.raises(ValueError, match="second half failed"):
        db.call(_insert_then_fail, 2)  # rolled back alone (its savepoint), the rest of the batch stays
    with pytest.raises(sqlite3.IntegrityError):
        db.call(_insert, 1, "duplicate")
    assert db.call(_insert, 3, "called") == 3
    db.call(where, write=False)
    assert db.call(_rows, write=False) == [(1, "posted"), (3, "called")]
    assert threads == {"malot-sqlite"} and threading.current_thread().name not in threads
    db.post(_insert_then_fail, 4)  # nobody waits: counted and logged
    db.call(_rows, write=False)
    assert db.failed_posts == 1
    db.close()
    with pytest.raises(StorageClosedError):
        db.post(_insert, 5, "late")


class _Gate:
    """An operation that holds the storage thread until released (a state to wait on, not a sleep)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, conn: sqlite3.Connection) -> None:
        self.entered.set()
        assert self.release.wait(60)


def test_writes_that_wait_together_share_one_commit_and_are_committed_when_acknowledged(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    db = _writer(path)
    gate = _Gate()

    async def scenario() -> list[int]:
        held = asyncio.ensure_future(db.run(gate, write=False))
        await asyncio.to_thread(gate.entered.wait, 60)  # the thread is busy: what comes now waits together
        writes = [asyncio.ensure_future(db.run(_insert, k, "w")) for k in range(50)]
        await asyncio.sleep(0)  # let every write be handed in
        before = db.batches
        gate.release.set()
        await held
        done = await asyncio.gather(*writes)
        assert db.batches == before + 1
        return done

    assert asyncio.run(scenario()) == list(range(50))
    other = sqlite3.connect(path)
    assert other.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 50  # committed, visible to another connection
    db.close()


def test_a_cancelled_waiter_drops_an_operation_that_had_not_started(tmp_path: Path) -> None:
    db = _writer(tmp_path / "db.sqlite")
    gate = _Gate()

    async def scenario() -> None:
        held = asyncio.ensure_future(db.run(gate, write=False))
        await asyncio.to_thread(gate.entered.wait, 60)
        kept = asyncio.ensure_future(db.run(_insert, 1, "kept"))
        dropped = asyncio.ensure_future(db.run(_insert, 2, "dropped"))
        await asyncio.sleep(0)
        dropped.cancel()
        await asyncio.wait([dropped])  # the cancellation has reached the queued operation
        gate.release.set()
        await held
        assert await kept == 1
        with pytest.raises(asyncio.CancelledError):
            await dropped
        await db.flush()

    asyncio.run(scenario())
    assert db.call(_rows, write=False) == [(1, "kept")]
    db.close()


def test_close_commits_what_was_posted(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    db = _writer(path)
    for k in range(100):
        db.post(_insert, k, "x")
    db.close()
    assert sqlite3.connect(path).execute("SELECT COUNT(*) FROM t").fetchone()[0] == 100


def test_a_failing_connect_is_raised_by_the_constructor(tmp_path: Path) -> None:
    def broken() -> sqlite3.Connection:
        raise sqlite3.OperationalError("unable to open database file")

    with pytest.raises(sqlite3.OperationalError, match="unable to open"):
        SQLiteWriter(broken)
