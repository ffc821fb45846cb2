"""The results store and the local runner, with the toy solver (a test double of the solver seam)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from malot.config import load_settings
from malot.errors import ConfigError
from malot.eval.datasets import load_dataset
from malot.eval.records import AttemptRecord, ProblemOutcome
from malot.eval.report import summarize, write_report
from malot.eval.runner import EvalRunner, LocalBackend
from malot.eval.runs import create_run, resume_settings
from malot.eval.store import ResultsStore, RunStoreError
from tests.eval.toy_solver import toy_solver, verifies

SUITE = Path(__file__).resolve().parents[1] / "data" / "prelude_suite" / "prelude_suite.jsonl"


def make_run(tmp_path: Path, samples: int = 3, count: int = 12) -> ResultsStore:
    settings = load_settings(overrides={"prover.samples": samples, "llm.model": "toy"})
    data = load_dataset("minif2f").select(split="valid", count=count)
    return create_run(data, settings, tmp_path / "run", solver="tests.eval.toy_solver:toy_solver")


def run(store: ResultsStore, jobs: int = 4) -> None:
    settings = resume_settings(store, {})
    asyncio.run(EvalRunner(store, settings, LocalBackend(toy_solver, jobs=jobs)).run())


def test_store_is_wal_with_one_row_per_attempt_and_metadata(tmp_path: Path) -> None:
    store = make_run(tmp_path)
    run(store)
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    rows = store.attempts(final_only=True)
    assert len(rows) == 12 * 3
    assert {(r["problem"], r["sample"]) for r in rows} == {(p.name, s) for p in store.problems() for s in range(3)}
    for r in rows:
        assert r["verified"] == verifies(r["problem"], r["sample"])
        assert r["tokens_in"] == 10 and r["strategy"] == "toy"
    info = store.run_info()
    assert info["model"] == "toy" and info["samples"] == 3 and info["settings"]["prover"]["samples"] == 3
    meta = info["meta"]
    assert meta["versions"]["malot"] and "git_commit" in meta and "lean_toolchain" in meta
    for row in store.problem_rows():
        expected_c = sum(verifies(row.name, s) for s in range(3))
        assert (row.status, row.n, row.c, row.solved) == ("done", 3, expected_c, expected_c > 0)


def test_rerun_never_runs_a_finished_problem_again(tmp_path: Path) -> None:
    store = make_run(tmp_path)
    run(store)
    before = len(store.attempts())
    summary = asyncio.run(EvalRunner(store, resume_settings(store, {}), LocalBackend(toy_solver)).run())
    assert summary.finished_now == 0 and summary.done == 12
    assert len(store.attempts()) == before
    with pytest.raises(RunStoreError, match="already done"):
        store.mark_running(store.problems()[0].name, 99)


def test_interrupted_session_attempts_are_kept_but_not_counted_in_pass_at_k(tmp_path: Path) -> None:
    store = make_run(tmp_path, samples=2, count=3)
    first = store.problems()[0].name
    session = store.begin_session("local")
    store.mark_running(first, session)
    store.add_attempt(AttemptRecord(problem=first, sample=0, verified=True, tokens_in=7), session)
    # the process dies here: no end_session, the problem stays running
    run(store)
    sessions = store.sessions()
    assert [s["status"] for s in sessions] == ["interrupted", "finished"]
    final = store.attempts(final_only=True)
    assert len(final) == 3 * 2 and all(a["session"] == 2 for a in final)
    summary = summarize(store)
    assert summary["ledger"]["attempts"] == 7 and summary["ledger"]["abandoned_attempts"] == 1
    assert summary["ledger"]["tokens_in"] == 6 * 10 + 7
    row = store.problem(first)
    assert row.n == 2 and row.c == sum(verifies(first, s) for s in range(2))


def test_solver_errors_are_recorded_and_retryable(tmp_path: Path) -> None:
    store = make_run(tmp_path, samples=1, count=2)

    class Boom:
        strategy = "boom"

        async def solve(self, problem: object, budget: object, sink: object) -> ProblemOutcome:
            raise RuntimeError("the model server went away")

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def boom(settings: object):  # type: ignore[no-untyped-def]
        yield Boom()

    asyncio.run(EvalRunner(store, resume_settings(store, {}), LocalBackend(boom)).run())
    rows = store.problem_rows()
    assert all(r.status == "done" and not r.solved and "went away" in (r.error or "") for r in rows)
    assert summarize(store)["errors"]
    assert store.reopen_errors() == 2
    run(store)
    assert all(r.error is None and r.n == 1 for r in store.problem_rows())


def test_resume_settings_keep_the_run_fixed(tmp_path: Path) -> None:
    store = make_run(tmp_path)
    settings = resume_settings(store, {"lean.pool_size": 3, "prover.samples": 3})
    assert settings.lean.pool_size == 3 and settings.prover.samples == 3
    with pytest.raises(ConfigError, match=r"prover\.samples \(run has 3, got 5\)"):
        resume_settings(store, {"prover.samples": 5})
    with pytest.raises(RunStoreError, match="already holds a run"):
        make_run(tmp_path)
    with pytest.raises(RunStoreError, match="no malot run"):
        ResultsStore.open(tmp_path / "nowhere")


def test_report_files_and_defects(tmp_path: Path) -> None:
    defects = tmp_path / "defects.txt"
    defects.write_text("aime_1984_p5 statement is false as formalised\n", encoding="utf-8")
    settings = load_settings(overrides={"prover.samples": 2})
    data = load_dataset("minif2f", defects=defects).select(split="valid", count=6)
    store = create_run(data, settings, tmp_path / "run")
    run(store)
    paths = write_report(store)
    assert {p.name for p in paths.values()} == {
        "report.json",
        "report.md",
        "pass_at_k.png",
        "solved_by_category.png",
        "verification_time.png",
    }
    for path in paths.values():
        assert path.stat().st_size > 200
    md = paths["markdown"].read_text(encoding="utf-8")
    assert "Known-defective statements" in md and "statement is false as formalised" in md
    assert "| 1 |" in md and "pass@k" in md


def test_a_run_in_use_by_a_live_process_cannot_be_resumed(tmp_path: Path) -> None:
    import os
    import socket
    import time

    store = make_run(tmp_path, count=2)
    conn = sqlite3.connect(store.path)
    with conn:
        conn.execute(
            "INSERT INTO sessions (started, status, backend, host, pid) VALUES (?, 'running', 'local', ?, ?)",
            (time.time(), socket.gethostname(), os.getppid()),
        )
    conn.close()
    with pytest.raises(RunStoreError, match=f"being worked on by process {os.getppid()}"):
        store.begin_session("local")


def test_the_runner_never_waits_on_sqlite_and_commits_every_attempt(tmp_path: Path) -> None:
    """While another connection holds the write lock, the run waits on the storage thread and the event loop keeps
    running; once the lock is released every attempt and every problem is committed."""
    store = make_run(tmp_path)
    settings = resume_settings(store, {})

    async def scenario() -> int:
        blocker = sqlite3.connect(store.path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        task = asyncio.create_task(EvalRunner(store, settings, LocalBackend(toy_solver, jobs=4)).run())
        ticks = 0
        while ticks < 20:  # the loop runs while the run's first write waits for the lock
            await asyncio.sleep(0.005)
            ticks += 1
        assert not task.done()
        committed = blocker.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
        blocker.execute("COMMIT")
        blocker.close()
        summary = await task
        assert summary.status == "finished"
        return int(committed)

    assert asyncio.run(scenario()) == 0
    counts = store.counts()
    assert counts["done"] == 12 and counts["attempts"] == 12 * 3
    assert [s["status"] for s in store.sessions()] == ["finished"]
