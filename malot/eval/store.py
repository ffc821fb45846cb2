"""The results store: one SQLite database per run, in WAL mode, one row per attempt.

Layout of a run folder: ``results.sqlite`` (this store), ``trace.jsonl`` (executor events) and ``report/``. The
store holds

* ``run``: one row of metadata (run id, dataset, strategy, model, the full settings, versions, git commit, Lean
  toolchain, host) written when the run is created;
* ``problems``: every selected problem with its statement (so ``--resume`` needs nothing but the folder), its
  state (``pending`` -> ``running`` -> ``done``) and, once done, solved / n / c / wall time;
* ``attempts``: one row per attempt, committed as soon as the solver reports it;
* ``sessions``: each process that worked on the run (the first run and every resume).

The store's connection belongs to a :class:`~malot.sqlite_writer.SQLiteWriter` thread, so the evaluation's event
loop never waits on SQLite: the methods are blocking (for the CLI and reports), and the runner uses their
``a``-prefixed coroutine twins and :meth:`ResultsStore.post_attempts`. Operations run in the order they were handed
in; those waiting together share one transaction, each in its own savepoint. What a ``kill -9`` can lose:

* nothing that was acknowledged: a session's start, a problem marked running or done, every method that returns
  after its commit (in WAL mode a commit is in the OS's hands once ``COMMIT`` returns; ``synchronous=NORMAL`` skips
  the per-commit fsync, so only a power failure or OS crash could drop the last commits; set ``MALOT_EVAL_FSYNC=1``
  to fsync every commit);
* nothing of a finished problem: its attempts are queued before the transaction that marks it ``done``, so they
  are committed with it or earlier;
* at most the last attempts posted by problems still running at the kill (queued, not yet committed: the writer
  is at most one transaction behind). Those problems are re-run on resume anyway; only the compute ledger of the
  interrupted session can miss these attempts.

A problem is *finished* only by the transaction that marks it ``done``; a resumed run re-runs
problems left ``running`` by a killed session (their earlier attempts stay, tagged with the old session, and count
in the compute ledger but not in pass@k), and never runs a ``done`` problem again.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from malot.errors import MalotError
from malot.eval.problems import BenchmarkProblem, category_of
from malot.eval.records import AttemptRecord, ProblemOutcome
from malot.sqlite_writer import SQLiteWriter

__all__ = ["STORE_NAME", "ProblemRow", "ResultsStore", "RunStoreError"]

STORE_NAME = "results.sqlite"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS run (
    run_id TEXT PRIMARY KEY,
    schema_version INTEGER NOT NULL,
    created REAL NOT NULL,
    dataset TEXT NOT NULL,
    strategy TEXT NOT NULL,
    model TEXT NOT NULL,
    samples INTEGER NOT NULL,
    settings TEXT NOT NULL,
    meta TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS problems (
    name TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    split TEXT NOT NULL,
    category TEXT NOT NULL,
    header TEXT NOT NULL,
    statement TEXT NOT NULL,
    informal TEXT,
    source TEXT NOT NULL,
    statement_hash TEXT NOT NULL,
    defect TEXT,
    status TEXT NOT NULL DEFAULT 'pending',
    session INTEGER,
    solved INTEGER,
    n INTEGER,
    c INTEGER,
    proof TEXT,
    error TEXT,
    stopped TEXT,
    wall_s REAL,
    started REAL,
    finished REAL
);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    problem TEXT NOT NULL REFERENCES problems(name),
    session INTEGER NOT NULL,
    strategy TEXT NOT NULL,
    round INTEGER NOT NULL,
    sample INTEGER NOT NULL,
    prompt_hash TEXT NOT NULL,
    output TEXT NOT NULL,
    proof TEXT NOT NULL,
    verified INTEGER NOT NULL,
    status TEXT NOT NULL,
    flags TEXT NOT NULL,
    error TEXT,
    tokens_in INTEGER NOT NULL,
    tokens_out INTEGER NOT NULL,
    lean_s REAL NOT NULL,
    lean_cpu_s REAL NOT NULL,
    wall_s REAL NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_problem ON attempts(problem, session);
CREATE TABLE IF NOT EXISTS sessions (
    session INTEGER PRIMARY KEY,
    started REAL NOT NULL,
    finished REAL,
    status TEXT NOT NULL,
    backend TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL
);
"""


class RunStoreError(MalotError):
    """A run folder or its results store is missing, from another malot version, or in use."""


@dataclass(slots=True, frozen=True)
class ProblemRow:
    """One problem of a run as the store has it."""

    name: str
    split: str
    category: str
    status: str
    solved: bool
    n: int
    c: int
    defect: str | None
    proof: str | None
    error: str | None
    wall_s: float
    stopped: str | None = None


class ResultsStore:
    """One run's SQLite results store; see the module docstring. Use :meth:`create` or :meth:`open`."""

    def __init__(self, path: Path, db: SQLiteWriter) -> None:
        self.path = path
        self._db = db

    # ------------------------------------------------------------------ lifecycle

    @staticmethod
    def _connect(path: Path, *, schema: bool) -> sqlite3.Connection:
        # the busy timeout holds up only the storage thread, never the event loop
        conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            "PRAGMA synchronous=FULL" if os.environ.get("MALOT_EVAL_FSYNC") == "1" else "PRAGMA synchronous=NORMAL"
        )
        conn.execute("PRAGMA foreign_keys=ON")
        if schema:
            conn.executescript(_SCHEMA)
        return conn

    @classmethod
    def create(
        cls,
        run_dir: str | Path,
        *,
        run_id: str,
        dataset: str,
        problems: Sequence[BenchmarkProblem],
        defects: dict[str, str] | None = None,
        strategy: str,
        model: str,
        samples: int,
        settings: dict[str, Any],
        meta: dict[str, Any],
    ) -> ResultsStore:
        """Create a new run's store in ``run_dir`` (which must not hold one already) with every problem pending."""
        folder = Path(run_dir)
        path = folder / STORE_NAME
        if path.exists():
            raise RunStoreError(
                f"{folder} already holds a run", hint=f"continue it with --resume {folder}, or pick another --out"
            )
        folder.mkdir(parents=True, exist_ok=True)
        db = SQLiteWriter(partial(cls._connect, path, schema=True), name="malot-results")
        defects = defects or {}
        run_row = (
            run_id,
            SCHEMA_VERSION,
            time.time(),
            dataset,
            strategy,
            model,
            samples,
            json.dumps(settings, default=str),
            json.dumps(meta, default=str),
        )
        problem_rows = [
            (
                p.name,
                i,
                p.split,
                p.category,
                p.header,
                p.statement,
                p.informal,
                p.source,
                p.statement_hash,
                defects.get(p.name),
            )
            for i, p in enumerate(problems)
        ]
        try:
            db.call(_insert_run, run_row, problem_rows)
        except BaseException:
            db.close()
            raise
        return cls(path, db)

    @classmethod
    def open(cls, run: str | Path) -> ResultsStore:
        """Open an existing run: ``run`` is its folder or its ``results.sqlite`` file."""
        p = Path(run)
        path = p if p.suffix == ".sqlite" else p / STORE_NAME
        if not path.is_file():
            raise RunStoreError(f"no malot run at {p} (no {STORE_NAME})", hint="pass the folder given to --out")
        try:
            db = SQLiteWriter(partial(cls._connect, path, schema=False), name="malot-results")
        except sqlite3.DatabaseError as exc:
            raise RunStoreError(f"{path} is not a malot results store: {exc}") from None
        try:
            version = db.call(_schema_version, write=False)
        except sqlite3.DatabaseError as exc:
            db.close()
            raise RunStoreError(f"{path} is not a malot results store: {exc}") from None
        if version != SCHEMA_VERSION:
            db.close()
            raise RunStoreError(f"{path} was written by another malot version (schema {version})")
        return cls(path, db)

    @property
    def run_dir(self) -> Path:
        """The run folder."""
        return self.path.parent

    def close(self) -> None:
        """Commit what is queued and close the database connection."""
        self._db.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def aflush(self) -> None:
        """Wait until every posted attempt is committed."""
        await self._db.flush()

    # ------------------------------------------------------------------ sessions

    def begin_session(self, backend: str) -> int:
        """Start a session (a process working on the run) and return its number.

        Problems a killed session left ``running`` go back to ``pending``; a session of a process still alive on
        this host is an error (two processes must not run the same run).
        """
        return self._db.call(_begin_session, backend, self.run_dir)

    async def abegin_session(self, backend: str) -> int:
        """:meth:`begin_session` off the event loop."""
        return await self._db.run(_begin_session, backend, self.run_dir)

    def end_session(self, session: int, status: str = "finished") -> None:
        """Mark a session finished (``finished``, ``interrupted`` or ``failed``), after everything queued before."""
        self._db.call(_end_session, session, status)

    async def aend_session(self, session: int, status: str = "finished") -> None:
        """:meth:`end_session` off the event loop."""
        await self._db.run(_end_session, session, status)

    # ------------------------------------------------------------------ writes

    def mark_running(self, name: str, session: int) -> None:
        """A session started ``name``; refuses a problem that is already done."""
        self._db.call(_mark_running, name, session)

    async def amark_running(self, name: str, session: int) -> None:
        """:meth:`mark_running` off the event loop."""
        await self._db.run(_mark_running, name, session)

    def add_attempt(self, record: AttemptRecord, session: int) -> None:
        """Commit one attempt."""
        self.add_attempts([record], session)

    def add_attempts(self, records: Iterable[AttemptRecord], session: int) -> None:
        """Commit several attempts in one transaction."""
        rows = _attempt_rows(records, session)
        if rows:
            self._db.call(_insert_attempts, rows)

    def post_attempts(self, records: Iterable[AttemptRecord], session: int) -> None:
        """Queue attempts for the next commit and return at once (for callbacks on the event loop); they are
        committed before anything handed in later, e.g. the :meth:`afinish_problem` of their problem."""
        rows = _attempt_rows(records, session)
        if rows:
            self._db.post(_insert_attempts, rows)

    def finish_problem(self, outcome: ProblemOutcome, session: int) -> ProblemRow:
        """Mark a problem done, computing n (samples drawn) and c (samples with a verified attempt) from this
        session's attempts; returns the finished row."""
        return self._db.call(_finish_problem, outcome, session)

    async def afinish_problem(self, outcome: ProblemOutcome, session: int) -> ProblemRow:
        """:meth:`finish_problem` off the event loop (after every attempt posted before it)."""
        return await self._db.run(_finish_problem, outcome, session)

    def reopen_errors(self) -> int:
        """Put problems that ended in a solver error back to ``pending`` (for ``--retry-errors``); returns how many."""
        return self._db.call(_reopen_errors)

    # ------------------------------------------------------------------ reads

    def run_info(self) -> dict[str, Any]:
        """The run's metadata row, with ``settings`` and ``meta`` decoded."""
        return self._db.call(_run_info, write=False)

    def sessions(self) -> list[dict[str, Any]]:
        """Every session of the run, oldest first."""
        return self._db.call(_sessions, write=False)

    def problems(self, *, status: str | None = None) -> list[BenchmarkProblem]:
        """The run's problems (optionally only those in ``status``; ``"open"`` means not done), in dataset order."""
        return self._db.call(_problems, status, write=False)

    async def aproblems(self, *, status: str | None = None) -> list[BenchmarkProblem]:
        """:meth:`problems` off the event loop."""
        return await self._db.run(_problems, status, write=False)

    def problem(self, name: str) -> ProblemRow:
        """One problem's row."""
        return self._db.call(_problem, name, self.run_dir, write=False)

    def problem_rows(self) -> list[ProblemRow]:
        """Every problem's row in dataset order."""
        return self._db.call(_problem_rows, write=False)

    def attempts(self, *, final_only: bool = False, problem: str | None = None) -> list[dict[str, Any]]:
        """Attempt rows (flags decoded), oldest first. ``final_only`` keeps only attempts of the session that
        finished their problem (what pass@k counts), dropping those of interrupted sessions."""
        return self._db.call(_attempts, final_only, problem, write=False)

    def counts(self) -> dict[str, int]:
        """Problems by status plus solved and attempt totals (for progress and summaries)."""
        return self._db.call(_counts, write=False)

    async def acounts(self) -> dict[str, int]:
        """:meth:`counts` off the event loop."""
        return await self._db.run(_counts, write=False)


# ---------------------------------------------------------------------- operations (run on the storage thread)


def _schema_version(conn: sqlite3.Connection) -> int | None:
    row = conn.execute("SELECT schema_version FROM run").fetchone()
    return int(row[0]) if row is not None else None


def _insert_run(conn: sqlite3.Connection, run_row: tuple[Any, ...], problem_rows: list[tuple[Any, ...]]) -> None:
    conn.execute("INSERT INTO run VALUES (?,?,?,?,?,?,?,?,?)", run_row)
    conn.executemany(
        "INSERT INTO problems (name, position, split, category, header, statement, informal, source,"
        " statement_hash, defect) VALUES (?,?,?,?,?,?,?,?,?,?)",
        problem_rows,
    )


def _begin_session(conn: sqlite3.Connection, backend: str, run_dir: Path) -> int:
    host = socket.gethostname()
    for row in conn.execute("SELECT session, host, pid FROM sessions WHERE finished IS NULL").fetchall():
        if row["host"] == host and row["pid"] != os.getpid() and _pid_alive(row["pid"]):
            raise RunStoreError(
                f"run {run_dir} is being worked on by process {row['pid']}",
                hint="wait for it to finish or stop it before resuming",
            )
    # a killed session ended, as far as we know, with its last committed attempt
    conn.execute(
        "UPDATE sessions SET status='interrupted', finished=COALESCE("
        "(SELECT MAX(created) FROM attempts WHERE attempts.session=sessions.session), started)"
        " WHERE finished IS NULL"
    )
    conn.execute("UPDATE problems SET status='pending' WHERE status='running'")
    cur = conn.execute(
        "INSERT INTO sessions (started, status, backend, host, pid) VALUES (?,?,?,?,?)",
        (time.time(), "running", backend, host, os.getpid()),
    )
    assert cur.lastrowid is not None
    return int(cur.lastrowid)


def _end_session(conn: sqlite3.Connection, session: int, status: str) -> None:
    conn.execute("UPDATE sessions SET status=?, finished=? WHERE session=?", (status, time.time(), session))


def _mark_running(conn: sqlite3.Connection, name: str, session: int) -> None:
    cur = conn.execute(
        "UPDATE problems SET status='running', session=?, started=? WHERE name=? AND status!='done'",
        (session, time.time(), name),
    )
    if cur.rowcount != 1:
        raise RunStoreError(f"problem {name!r} is already done or not part of this run")


def _attempt_rows(records: Iterable[AttemptRecord], session: int) -> list[tuple[Any, ...]]:
    now = time.time()
    return [
        (
            r.problem,
            session,
            r.strategy,
            r.round,
            r.sample,
            r.prompt_hash,
            r.output,
            r.proof,
            int(r.verified),
            r.status,
            json.dumps(r.flags, default=str),
            r.error,
            r.tokens_in,
            r.tokens_out,
            r.lean_s,
            r.lean_cpu_s,
            r.wall_s,
            now,
        )
        for r in records
    ]


def _insert_attempts(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    conn.executemany(
        "INSERT INTO attempts (problem, session, strategy, round, sample, prompt_hash, output, proof,"
        " verified, status, flags, error, tokens_in, tokens_out, lean_s, lean_cpu_s, wall_s, created)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        rows,
    )


def _finish_problem(conn: sqlite3.Connection, outcome: ProblemOutcome, session: int) -> ProblemRow:
    stats = conn.execute(
        "SELECT COUNT(DISTINCT sample) AS n,"
        " COUNT(DISTINCT CASE WHEN verified=1 THEN sample END) AS c"
        " FROM attempts WHERE problem=? AND session=?",
        (outcome.problem, session),
    ).fetchone()
    n, c = int(stats["n"]), int(stats["c"])
    solved = outcome.solved or c > 0
    cur = conn.execute(
        "UPDATE problems SET status='done', solved=?, n=?, c=?, proof=?, error=?, stopped=?, wall_s=?,"
        " finished=? WHERE name=? AND session=? AND status='running'",
        (
            int(solved),
            n,
            c,
            outcome.proof,
            outcome.error,
            outcome.stopped,
            outcome.wall_s,
            time.time(),
            outcome.problem,
            session,
        ),
    )
    if cur.rowcount != 1:
        raise RunStoreError(f"problem {outcome.problem!r} is not running in session {session}")
    row = conn.execute("SELECT * FROM problems WHERE name=?", (outcome.problem,)).fetchone()
    return _problem_row(row)


def _reopen_errors(conn: sqlite3.Connection) -> int:
    cur = conn.execute(
        "UPDATE problems SET status='pending', solved=NULL, n=NULL, c=NULL, error=NULL"
        " WHERE status='done' AND error IS NOT NULL"
    )
    return int(cur.rowcount)


def _run_info(conn: sqlite3.Connection) -> dict[str, Any]:
    info = dict(conn.execute("SELECT * FROM run").fetchone())
    info["settings"] = json.loads(info["settings"])
    info["meta"] = json.loads(info["meta"])
    return info


def _sessions(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute("SELECT * FROM sessions ORDER BY session")]


def _problems(conn: sqlite3.Connection, status: str | None) -> list[BenchmarkProblem]:
    sql = "SELECT * FROM problems"
    args: tuple[Any, ...] = ()
    if status == "open":
        sql += " WHERE status!='done'"
    elif status is not None:
        sql += " WHERE status=?"
        args = (status,)
    rows = conn.execute(sql + " ORDER BY position", args).fetchall()
    return [
        BenchmarkProblem(
            name=r["name"],
            split=r["split"],
            header=r["header"],
            statement=r["statement"],
            informal=r["informal"],
            source=r["source"],
        )
        for r in rows
    ]


def _problem(conn: sqlite3.Connection, name: str, run_dir: Path) -> ProblemRow:
    row = conn.execute("SELECT * FROM problems WHERE name=?", (name,)).fetchone()
    if row is None:
        raise RunStoreError(f"problem {name!r} is not part of run {run_dir}")
    return _problem_row(row)


def _problem_rows(conn: sqlite3.Connection) -> list[ProblemRow]:
    return [_problem_row(r) for r in conn.execute("SELECT * FROM problems ORDER BY position")]


def _attempts(conn: sqlite3.Connection, final_only: bool, problem: str | None) -> list[dict[str, Any]]:
    sql = "SELECT a.* FROM attempts a"
    where: list[str] = []
    args: list[Any] = []
    if final_only:
        sql += " JOIN problems p ON p.name = a.problem"
        where.append("p.status='done' AND a.session = p.session")
    if problem is not None:
        where.append("a.problem=?")
        args.append(problem)
    if where:
        sql += " WHERE " + " AND ".join(where)
    out = []
    for r in conn.execute(sql + " ORDER BY a.id", args):
        row = dict(r)
        row["flags"] = json.loads(row["flags"])
        row["verified"] = bool(row["verified"])
        out.append(row)
    return out


def _counts(conn: sqlite3.Connection) -> dict[str, int]:
    out = {"pending": 0, "running": 0, "done": 0}
    for r in conn.execute("SELECT status, COUNT(*) FROM problems GROUP BY status"):
        out[r[0]] = int(r[1])
    out["solved"] = int(conn.execute("SELECT COUNT(*) FROM problems WHERE solved=1").fetchone()[0])
    out["attempts"] = int(conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0])
    out["total"] = out["pending"] + out["running"] + out["done"]
    return out


def _problem_row(r: sqlite3.Row) -> ProblemRow:
    return ProblemRow(
        name=r["name"],
        split=r["split"],
        category=r["category"] or category_of(r["name"]),
        status=r["status"],
        solved=bool(r["solved"]),
        n=int(r["n"] or 0),
        c=int(r["c"] or 0),
        defect=r["defect"],
        proof=r["proof"],
        error=r["error"],
        wall_s=float(r["wall_s"] or 0.0),
        stopped=r["stopped"],
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
