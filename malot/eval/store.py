"""The results store: one SQLite database per run, in WAL mode, one row per attempt.

Layout of a run folder: ``results.sqlite`` (this store), ``trace.jsonl`` (executor events) and ``report/``. The
store holds

* ``run``: one row of metadata (run id, dataset, strategy, model, the full settings, versions, git commit, Lean
  toolchain, host) written when the run is created;
* ``problems``: every selected problem with its statement (so ``--resume`` needs nothing but the folder), its
  state (``pending`` -> ``running`` -> ``done``) and, once done, solved / n / c / wall time;
* ``attempts``: one row per attempt, committed as soon as the solver reports it;
* ``sessions``: each process that worked on the run (the first run and every resume).

Every write is its own transaction, so killing the process at any moment loses no committed row (in WAL mode a
commit is in the OS's hands once ``COMMIT`` returns; ``synchronous=NORMAL`` skips the per-commit fsync, so only a
power failure or OS crash could drop the last commits; set ``MALOT_EVAL_FSYNC=1`` to fsync every commit).

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
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from malot.errors import MalotError
from malot.eval.problems import BenchmarkProblem, category_of
from malot.eval.records import AttemptRecord, ProblemOutcome

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

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn

    # ------------------------------------------------------------------ lifecycle

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            "PRAGMA synchronous=FULL" if os.environ.get("MALOT_EVAL_FSYNC") == "1" else "PRAGMA synchronous=NORMAL"
        )
        conn.execute("PRAGMA foreign_keys=ON")
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
        conn = cls._connect(path)
        defects = defects or {}
        conn.executescript(_SCHEMA)
        with _transaction(conn):
            conn.execute(
                "INSERT INTO run VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    run_id,
                    SCHEMA_VERSION,
                    time.time(),
                    dataset,
                    strategy,
                    model,
                    samples,
                    json.dumps(settings, default=str),
                    json.dumps(meta, default=str),
                ),
            )
            conn.executemany(
                "INSERT INTO problems (name, position, split, category, header, statement, informal, source,"
                " statement_hash, defect) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [
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
                ],
            )
        return cls(path, conn)

    @classmethod
    def open(cls, run: str | Path) -> ResultsStore:
        """Open an existing run: ``run`` is its folder or its ``results.sqlite`` file."""
        p = Path(run)
        path = p if p.suffix == ".sqlite" else p / STORE_NAME
        if not path.is_file():
            raise RunStoreError(f"no malot run at {p} (no {STORE_NAME})", hint="pass the folder given to --out")
        conn = cls._connect(path)
        try:
            row = conn.execute("SELECT schema_version FROM run").fetchone()
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise RunStoreError(f"{path} is not a malot results store: {exc}") from None
        if row is None or row[0] != SCHEMA_VERSION:
            conn.close()
            raise RunStoreError(f"{path} was written by another malot version (schema {row[0] if row else None})")
        return cls(path, conn)

    @property
    def run_dir(self) -> Path:
        """The run folder."""
        return self.path.parent

    def close(self) -> None:
        """Close the database connection."""
        self._conn.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ sessions

    def begin_session(self, backend: str) -> int:
        """Start a session (a process working on the run) and return its number.

        Problems a killed session left ``running`` go back to ``pending``; a session of a process still alive on
        this host is an error (two processes must not run the same run).
        """
        host = socket.gethostname()
        with _transaction(self._conn):
            for row in self._conn.execute("SELECT session, host, pid FROM sessions WHERE finished IS NULL"):
                if row["host"] == host and row["pid"] != os.getpid() and _pid_alive(row["pid"]):
                    raise RunStoreError(
                        f"run {self.run_dir} is being worked on by process {row['pid']}",
                        hint="wait for it to finish or stop it before resuming",
                    )
            # a killed session ended, as far as we know, with its last committed attempt
            self._conn.execute(
                "UPDATE sessions SET status='interrupted', finished=COALESCE("
                "(SELECT MAX(created) FROM attempts WHERE attempts.session=sessions.session), started)"
                " WHERE finished IS NULL"
            )
            self._conn.execute("UPDATE problems SET status='pending' WHERE status='running'")
            cur = self._conn.execute(
                "INSERT INTO sessions (started, status, backend, host, pid) VALUES (?,?,?,?,?)",
                (time.time(), "running", backend, host, os.getpid()),
            )
        assert cur.lastrowid is not None
        return int(cur.lastrowid)

    def end_session(self, session: int, status: str = "finished") -> None:
        """Mark a session finished (``finished``, ``interrupted`` or ``failed``)."""
        with _transaction(self._conn):
            self._conn.execute(
                "UPDATE sessions SET status=?, finished=? WHERE session=?", (status, time.time(), session)
            )

    # ------------------------------------------------------------------ writes

    def mark_running(self, name: str, session: int) -> None:
        """A session started ``name``; refuses a problem that is already done."""
        with _transaction(self._conn):
            cur = self._conn.execute(
                "UPDATE problems SET status='running', session=?, started=? WHERE name=? AND status!='done'",
                (session, time.time(), name),
            )
            if cur.rowcount != 1:
                raise RunStoreError(f"problem {name!r} is already done or not part of this run")

    def add_attempt(self, record: AttemptRecord, session: int) -> None:
        """Commit one attempt."""
        self.add_attempts([record], session)

    def add_attempts(self, records: Iterable[AttemptRecord], session: int) -> None:
        """Commit several attempts in one transaction."""
        now = time.time()
        rows = [
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
        if not rows:
            return
        with _transaction(self._conn):
            self._conn.executemany(
                "INSERT INTO attempts (problem, session, strategy, round, sample, prompt_hash, output, proof,"
                " verified, status, flags, error, tokens_in, tokens_out, lean_s, lean_cpu_s, wall_s, created)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )

    def finish_problem(self, outcome: ProblemOutcome, session: int) -> ProblemRow:
        """Mark a problem done, computing n (samples drawn) and c (samples with a verified attempt) from this
        session's attempts; returns the finished row."""
        with _transaction(self._conn):
            stats = self._conn.execute(
                "SELECT COUNT(DISTINCT sample) AS n,"
                " COUNT(DISTINCT CASE WHEN verified=1 THEN sample END) AS c"
                " FROM attempts WHERE problem=? AND session=?",
                (outcome.problem, session),
            ).fetchone()
            n, c = int(stats["n"]), int(stats["c"])
            solved = outcome.solved or c > 0
            cur = self._conn.execute(
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
        return self.problem(outcome.problem)

    def reopen_errors(self) -> int:
        """Put problems that ended in a solver error back to ``pending`` (for ``--retry-errors``); returns how many."""
        with _transaction(self._conn):
            cur = self._conn.execute(
                "UPDATE problems SET status='pending', solved=NULL, n=NULL, c=NULL, error=NULL"
                " WHERE status='done' AND error IS NOT NULL"
            )
        return int(cur.rowcount)

    # ------------------------------------------------------------------ reads

    def run_info(self) -> dict[str, Any]:
        """The run's metadata row, with ``settings`` and ``meta`` decoded."""
        row = self._conn.execute("SELECT * FROM run").fetchone()
        info = dict(row)
        info["settings"] = json.loads(info["settings"])
        info["meta"] = json.loads(info["meta"])
        return info

    def sessions(self) -> list[dict[str, Any]]:
        """Every session of the run, oldest first."""
        return [dict(r) for r in self._conn.execute("SELECT * FROM sessions ORDER BY session")]

    def problems(self, *, status: str | None = None) -> list[BenchmarkProblem]:
        """The run's problems (optionally only those in ``status``; ``"open"`` means not done), in dataset order."""
        sql = "SELECT * FROM problems"
        args: tuple[Any, ...] = ()
        if status == "open":
            sql += " WHERE status!='done'"
        elif status is not None:
            sql += " WHERE status=?"
            args = (status,)
        rows = self._conn.execute(sql + " ORDER BY position", args).fetchall()
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

    def problem(self, name: str) -> ProblemRow:
        """One problem's row."""
        row = self._conn.execute("SELECT * FROM problems WHERE name=?", (name,)).fetchone()
        if row is None:
            raise RunStoreError(f"problem {name!r} is not part of run {self.run_dir}")
        return _problem_row(row)

    def problem_rows(self) -> list[ProblemRow]:
        """Every problem's row in dataset order."""
        return [_problem_row(r) for r in self._conn.execute("SELECT * FROM problems ORDER BY position")]

    def attempts(self, *, final_only: bool = False, problem: str | None = None) -> list[dict[str, Any]]:
        """Attempt rows (flags decoded), oldest first. ``final_only`` keeps only attempts of the session that
        finished their problem (what pass@k counts), dropping those of interrupted sessions."""
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
        for r in self._conn.execute(sql + " ORDER BY a.id", args):
            row = dict(r)
            row["flags"] = json.loads(row["flags"])
            row["verified"] = bool(row["verified"])
            out.append(row)
        return out

    def counts(self) -> dict[str, int]:
        """Problems by status plus solved and attempt totals (for progress and summaries)."""
        out = {"pending": 0, "running": 0, "done": 0}
        for r in self._conn.execute("SELECT status, COUNT(*) FROM problems GROUP BY status"):
            out[r[0]] = int(r[1])
        out["solved"] = int(self._conn.execute("SELECT COUNT(*) FROM problems WHERE solved=1").fetchone()[0])
        out["attempts"] = int(self._conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0])
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


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
