"""Full evaluations of the prelude theorem suite with a scripted LLM (the LLM test double) and the real Lean 4.35.

The script gives problem i exactly ``c_i = i % 5`` correct proofs among its 4 samples (the suite's correct proof
c_i times, its wrong proof otherwise), so the solved set and pass@k are known in advance:
pass@1 = mean(c/4) = 0.5; pass@2 = mean over c=0..4 of (0, 1 - 3/6, 1 - 1/6, 1, 1) = 2/3;
pass@3 = mean(0, 1 - 1/4, 1, 1, 1) = 0.75; pass@4 = 0.8.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from malot.cli.app import main
from malot.config import load_settings
from malot.eval.datasets import load_dataset
from malot.eval.prover_solver import prover_solver
from malot.eval.report import summarize
from malot.eval.runner import EvalRunner, LocalBackend
from malot.eval.runs import create_run
from malot.eval.store import ResultsStore

REPO = Path(__file__).resolve().parents[2]
SUITE = REPO / "tests" / "data" / "prelude_suite" / "prelude_suite.jsonl"
ROWS = [json.loads(line) for line in SUITE.read_text(encoding="utf-8").splitlines() if line.strip()]
SAMPLES = 4
EXPECTED_PASS = {"1": 0.5, "2": 2 / 3, "3": 0.75, "4": 0.8}

pytestmark = pytest.mark.lean


def _key(row: dict[str, Any]) -> str:
    return str(row["statement"]).rstrip().removesuffix(":=").rstrip()


def write_script(path: Path) -> Path:
    """A ``script:FILE`` mapping each statement to its 4 completions (the whole-proof prompt ends in an open block)."""
    script = {}
    for i, row in enumerate(ROWS):
        c = i % 5
        script[_key(row)] = [f"\n  {row['proof']}\n```"] * c + [f"\n  {row['wrong_proof']}\n```"] * (SAMPLES - c)
    path.write_text(json.dumps(script), encoding="utf-8")
    return path


def expected_solved() -> set[str]:
    return {row["name"] for i, row in enumerate(ROWS) if i % 5}


def run_args(script: Path, lean: Path, out: Path) -> list[str]:
    return [
        "eval",
        str(SUITE),
        "--model",
        f"script:{script}",
        "--strategy",
        "whole-proof",
        "--samples",
        str(SAMPLES),
        "--lean",
        str(lean),
        "--lean-backend",
        "file",
        "--out",
        str(out),
        "--no-progress",
    ]


def test_whole_proof_evaluation_of_the_prelude_suite(
    tmp_path: Path, lean_exe: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = write_script(tmp_path / "script.json")
    out = tmp_path / "run"
    assert main([*run_args(script, lean_exe, out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["solved"] == 32 and result["done"] == 40
    assert result["pass_at_k"] == pytest.approx(EXPECTED_PASS)
    with ResultsStore.open(out) as store:
        assert {r.name for r in store.problem_rows() if r.solved} == expected_solved()
        attempts = store.attempts()
        assert len(attempts) == 40 * SAMPLES
        assert sum(a["verified"] for a in attempts) == sum(i % 5 for i in range(40))
        for a in attempts:
            assert a["strategy"] == "whole-proof" and a["round"] == 0 and a["prompt_hash"]
            assert a["tokens_in"] > 0 and a["tokens_out"] > 0
            assert a["flags"]["statement_respliced"] is True
            if a["verified"]:
                assert a["flags"]["no_errors"] and a["proof"].rstrip().endswith(
                    ROWS[[r["name"] for r in ROWS].index(a["problem"])]["proof"].rstrip()
                )
        assert any(a["lean_s"] > 0 and a["lean_cpu_s"] > 0 for a in attempts)
        info = store.run_info()
        assert "4.35" in (info["meta"]["lean_toolchain"] or "")
        summary = summarize(store)
        assert summary["ledger"]["samples"] == 160 and summary["ledger"]["lean_cpu_s"] > 0
        assert summary["ledger"]["per_solved"]["samples"] == pytest.approx(160 / 32)
    from malot.agents import read_trace

    trace = read_trace(out / "trace.jsonl").summary()
    assert trace["groups"] == 40 and trace["solved"] == 32 and trace["attempts"] == 40 * SAMPLES
    for name in ("report.md", "report.json", "pass_at_k.png", "solved_by_category.png", "verification_time.png"):
        assert (out / "report" / name).stat().st_size > 200


def test_ma_lot_rounds_are_recorded_and_a_corrected_sample_counts(tmp_path: Path, lean_exe: Path) -> None:
    """MA-LoT with one correction round: even problems get a wrong first proof, then the corrector fixes it."""
    from malot.llm.base import prompt_text
    from malot.llm.fake import ScriptedLLM

    by_key = {_key(row): (i, row) for i, row in enumerate(ROWS)}

    def answer(request: Any) -> str:
        text = prompt_text(request)
        index, row = next(v for k, v in by_key.items() if k in text)
        corrector = "rejected by Lean" in text
        proof = row["proof"] if corrector or index % 2 else row["wrong_proof"]
        return f"\n  {proof}\n```"

    settings = load_settings(
        overrides={
            "llm.model": "scripted",
            "prover.strategy": "ma-lot",
            "prover.template": "deepseek-prover-v1.5",
            "prover.samples": 2,
            "prover.rounds": 1,
            "lean.lean_path": str(lean_exe),
            "lean.backend": "file",
        }
    )
    data = load_dataset(SUITE).select(count=10)
    store = create_run(data, settings, tmp_path / "malot")

    def factory(s: Any) -> Any:
        return prover_solver(s, llm=ScriptedLLM(answer))

    summary = asyncio.run(EvalRunner(store, settings, LocalBackend(factory, jobs=4)).run())
    assert summary.solved == 10
    attempts = store.attempts()
    rounds = Counter((a["problem"], a["round"]) for a in attempts)
    for i, row in enumerate(ROWS[:10]):
        assert rounds[(row["name"], 0)] == 2
        assert rounds[(row["name"], 1)] == (2 if i % 2 == 0 else 0)
    assert all(a["verified"] == (a["round"] == 1 or ROWS.index(_row(a["problem"])) % 2 == 1) for a in attempts)
    assert summarize(store)["pass_at_k"] == pytest.approx({"1": 1.0, "2": 1.0})
    store.close()


def test_token_budget_stops_corrections(tmp_path: Path, lean_exe: Path) -> None:
    """A per-problem token budget spent by the first proofs leaves no correction round; the report says why."""
    from malot.llm.fake import ScriptedLLM

    wrong = {_key(row): f"\n  {row['wrong_proof']}\n```" for row in ROWS}
    settings = load_settings(
        overrides={
            "llm.model": "scripted",
            "prover.strategy": "ma-lot",
            "prover.template": "deepseek-prover-v1.5",
            "prover.samples": 2,
            "prover.rounds": 2,
            "budget.tokens": 10,
            "lean.lean_path": str(lean_exe),
            "lean.backend": "file",
        }
    )
    store = create_run(load_dataset(SUITE).select(count=3), settings, tmp_path / "budget")

    def factory(s: Any) -> Any:
        return prover_solver(s, llm=ScriptedLLM(wrong))

    asyncio.run(EvalRunner(store, settings, LocalBackend(factory)).run())
    attempts = store.attempts()
    assert attempts and {a["round"] for a in attempts} == {0} and not any(a["verified"] for a in attempts)
    summary = summarize(store)
    assert summary["solved"] == 0 and set(summary["budget_stops"].values()) == {"tokens"}
    store.close()


def _row(name: str) -> dict[str, Any]:
    return next(r for r in ROWS if r["name"] == name)


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


def test_kill_minus_nine_with_the_real_prover_then_resume(tmp_path: Path, lean_exe: Path) -> None:
    """The prover-backed run killed mid-way and resumed ends with the same per-problem results as a straight run."""
    script = write_script(tmp_path / "script.json")
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "malot",
            *run_args(script, lean_exe, killed),
            "--count",
            "10",
            "--jobs",
            "1",
            "--no-report",
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while _done(killed / "results.sqlite") < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with ResultsStore.open(killed) as store:
        before = {a["id"]: a for a in store.attempts()}
        assert 3 <= store.counts()["done"] < 10
    assert main(["eval", "--resume", str(killed), "--no-progress", "--no-report"]) == 0
    straight = tmp_path / "straight"
    assert main([*run_args(script, lean_exe, straight), "--count", "10", "--no-report"]) == 0
    with ResultsStore.open(killed) as a, ResultsStore.open(straight) as b:
        assert {r.name: (r.n, r.c, r.solved) for r in a.problem_rows()} == {
            r.name: (r.n, r.c, r.solved) for r in b.problem_rows()
        }
        final = [(x["problem"], x["sample"]) for x in a.attempts(final_only=True)]
        assert len(final) == len(set(final)) == 10 * SAMPLES
        assert summarize(a)["pass_at_k"] == pytest.approx(EXPECTED_PASS)
        after = {x["id"]: x for x in a.attempts()}
        assert all(after[i] == row for i, row in before.items())
