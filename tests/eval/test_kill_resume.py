"""Kill -9 in the middle of a run, then ``--resume``: same results as an uninterrupted run, nothing lost or doubled.

The killed process runs ``malot eval`` in a subprocess with the toy solver (a test double of the solver seam, slowed
down so the kill lands mid-run); the prover-backed version with the real Lean lives in test_prelude_eval.py.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from malot.cli.app import main
from malot.eval.store import ResultsStore
from tests.eval.toy_solver import verifies

REPO = Path(__file__).resolve().parents[2]
SUITE = REPO / "tests" / "data" / "prelude_suite" / "prelude_suite.jsonl"
ARGS = ["--solver", "tests.eval.toy_solver:toy_solver", "--samples", "4", "--model", "toy", "--no-progress"]


def _done(db: Path) -> int:
    if not db.exists():
        return 0
    conn = sqlite3.connect(db, timeout=5)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM problems WHERE status='done'").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def _final(store: ResultsStore) -> tuple[dict[str, tuple[int, int, bool]], list[tuple[str, int, bool]]]:
    rows = {r.name: (r.n, r.c, r.solved) for r in store.problem_rows()}
    attempts = sorted((a["problem"], a["sample"], a["verified"]) for a in store.attempts(final_only=True))
    return rows, attempts


def test_kill_minus_nine_then_resume_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    killed = tmp_path / "killed"
    env = {**os.environ, "TOY_SOLVER_DELAY": "0.04", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "malot", "eval", str(SUITE), *ARGS, "--jobs", "2", "--out", str(killed)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    db = killed / "results.sqlite"
    deadline = time.monotonic() + 60
    while _done(db) < 8 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""

    with ResultsStore.open(killed) as store:
        counts = store.counts()
        committed = {a["id"]: a for a in store.attempts()}
    assert 8 <= counts["done"] < 40, counts
    assert committed

    assert main(["eval", "--resume", str(killed), "--no-progress", "--no-report"]) == 0

    reference = tmp_path / "reference"
    assert main(["eval", str(SUITE), *ARGS, "--out", str(reference), "--no-report"]) == 0

    with ResultsStore.open(killed) as resumed, ResultsStore.open(reference) as straight:
        rows, attempts = _final(resumed)
        ref_rows, ref_attempts = _final(straight)
        assert rows == ref_rows
        assert attempts == ref_attempts
        assert len(attempts) == 40 * 4 and len(set(attempts)) == len(attempts)  # no duplicate, none lost
        for name, (n, c, _solved) in rows.items():
            assert (n, c) == (4, sum(verifies(name, s) for s in range(4)))
        after = {a["id"]: a for a in resumed.attempts()}
        assert all(after[i] == row for i, row in committed.items())  # every committed attempt survived
        sessions = resumed.sessions()
        assert [s["status"] for s in sessions] == ["interrupted", "finished"]
        assert resumed.counts()["done"] == 40


#: ``python -m malot`` with Python's own Ctrl-C handler restored first. A shell that starts pytest as a background
#: job (``nohup pytest ... &``) sets SIGINT to "ignore" and children inherit it, so ``malot eval`` would never see
#: the Ctrl-C this test sends. (Done in the child's first line rather than in a ``preexec_fn``, which is unsafe in
#: a parent with threads.)
MALOT_WITH_CTRL_C = [
    sys.executable,
    "-c",
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'malot'; runpy.run_module('malot', run_name='__main__')",
]


def test_ctrl_c_marks_the_session_interrupted_and_says_how_to_resume(tmp_path: Path) -> None:
    out = tmp_path / "run"
    env = {**os.environ, "TOY_SOLVER_DELAY": "0.04", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [*MALOT_WITH_CTRL_C, "eval", str(SUITE), *ARGS, "--jobs", "2", "--out", str(out)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while _done(out / "results.sqlite") < 4 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)  # waiting for a state (4 problems committed), polled
    assert proc.poll() is None and _done(out / "results.sqlite") >= 4, "the run was not in progress"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert f"continue with malot eval --resume {out}" in err
    with ResultsStore.open(out) as store:
        assert [s["status"] for s in store.sessions()] == ["interrupted"]
        assert store.counts()["done"] < 40
    assert main(["eval", "--resume", str(out), "--no-progress", "--no-report"]) == 0
    with ResultsStore.open(out) as store:
        assert store.counts()["done"] == 40 and len(store.attempts(final_only=True)) == 160
