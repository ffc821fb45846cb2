"""``malot prove/eval --strategy best-first|rmaxts`` and ``malot trace show`` on a Lake project whose REPL is the
replay double (a stand-in ``lake`` and REPL binary: the Lean toolchain is the boundary that cannot run here)."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from malot.cli.app import main

DATA = Path(__file__).resolve().parents[1] / "data" / "repl_transcripts"
STATEMENT = "theorem complex_and (p q r : Prop) (h1 : p ∧ q) (h2 : q → r) : p ∧ r := by"
# prompt substring (the goals part of the policy prompt) -> tactic; checked in order
POLICY = {
    "⊢ p ∧ r\n[PROOFSTEP]": "apply And.intro",
    "⊢ p\n\ncase right": "exact h1.left",
    "⊢ r\n[PROOFSTEP]": "apply h2",
    "⊢ q\n[PROOFSTEP]": "exact h1.right",
    "⊢ x = 2\n[PROOFSTEP]": "assumption",
}


def _executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Lake project whose built REPL is the replay double, and a ``lake`` that runs ``lake env CMD``."""
    root = tmp_path / "project"
    replay = f"{sys.executable} -m malot.testing.repl_replay --mode lookup --compose {DATA}"
    _executable(root / ".lake" / "build" / "bin" / "repl", f"#!/bin/sh\nexec {replay}\n")
    _executable(tmp_path / "bin" / "lake", '#!/bin/sh\n[ "$1" = env ] && shift\nexec "$@"\n')
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    config = tmp_path / "malot.toml"
    config.write_text(
        "[lean]\n"
        f'backend = "repl"\nproject = "{root}"\npool_size = 1\ntimeout_s = 20\nsandbox = "off"\nfinal_check = "off"\n'
        "[prover]\nsamples = 2\n"
        "[search]\ntactics_per_state = 2\nwidth = 2\n"
        f'[output]\ndir = "{tmp_path / "out"}"\n'
    )
    return config


def test_prove_best_first_from_the_cli_and_show_the_tree(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "policy.json"
    script.write_text(json.dumps(POLICY, ensure_ascii=False))
    problem = tmp_path / "p.lean"
    problem.write_text(STATEMENT + " sorry\n")
    out = tmp_path / "run"
    args = ["--config", str(project), "prove", "--file", str(problem), "--theorem", "complex_and"]
    code = main([*args, "--strategy", "best-first", "--model", f"script:{script}", "--out", str(out), "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["proved"] and result["strategy"] == "best-first"
    assert "  apply And.intro\n  exact h1.left\n  apply h2\n  exact h1.right" in result["proof"]
    assert main(["trace", "show", str(out / "trace.jsonl"), "--errors", "1"]) == 0
    shown = capsys.readouterr().out
    assert "search: stopped proved" in shown and "apply And.intro" in shown and "no goals" in shown
    assert main(["trace", "show", str(out / "trace.jsonl"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    trees = [s["search_tree"] for g in data for a in g["attempts"] for s in a["steps"] if s["search_tree"]]
    assert trees and any(n["status"] == "proved" for t in trees for n in t["nodes"])


@pytest.mark.slow
def test_eval_best_first_records_expansions_in_the_ledger(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "policy.json"
    script.write_text(json.dumps(POLICY, ensure_ascii=False))
    dataset = tmp_path / "suite.jsonl"
    rows = [
        {"name": "complex_and", "split": "test", "header": "", "formal_statement": STATEMENT},
        {
            "name": "aa",
            "split": "test",
            "header": "",
            "formal_statement": "theorem aa (x : Nat) (h1 : x  = 2) : x = 2 := by",
        },
    ]
    dataset.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    out = tmp_path / "eval"
    code = main(
        [
            "--config", str(project), "eval", "run", str(dataset), "--strategy", "best-first",
            "--model", f"script:{script}", "--samples", "1", "--out", str(out), "--json",
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr()
    report = json.loads((out / "report" / "report.json").read_text())
    ledger = report["ledger"]
    assert report["solved"] == 2
    assert ledger["search_by_problem"]["aa"] == {"expansions": 1, "tactic_calls": 1}
    assert ledger["search_by_problem"]["complex_and"]["expansions"] == 4
    assert ledger["expansions"] == 5 and "expansions / tactic calls | 5 /" in (out / "report" / "report.md").read_text()


def test_prove_rmaxts_from_the_cli(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # two whole proofs: the first fails at its third tactic, the second resumes after the two valid ones
    monkeypatch.setenv("MALOT_SEARCH__WIDTH", "1")  # one rollout at a time
    script = tmp_path / "proofs.jsonl"
    answers = ["  apply And.intro\n  exact h1.left\n  exact h1\n```", "  apply h2\n  exact h1.right\n```"]
    script.write_text("".join(json.dumps(a) + "\n" for a in answers))
    problem = tmp_path / "p.lean"
    problem.write_text(STATEMENT + " sorry\n")
    args = ["--config", str(project), "prove", "--file", str(problem), "--theorem", "complex_and", "--samples", "1"]
    code = main([*args, "--strategy", "rmaxts", "--model", f"script:{script}", "--out", str(tmp_path / "r"), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert result["proved"] and result["summary"]["search"]["expansions"] == 2
    assert result["proof"].endswith("  apply h2\n  exact h1.right")


def test_live_progress_shows_search_figures() -> None:
    from malot.cli.prove import _LiveProgress

    progress = _LiveProgress(samples=2)
    progress.task = progress.progress.add_task("proving", total=2, status="")
    for attempt, data in (("g/0", {"expansions": 3, "open": 5, "best_score": -1.25}), ("g/1", {"expansions": 2})):
        progress.on_event({"type": "note", "group_id": "g", "data": {"attempt_id": attempt, "search": data}})
    assert progress.search_status() == "expansions 5 · open 5 · best -1.25"
    status = progress.progress.tasks[0].fields["status"]
    assert status.startswith("expansions 5 · open 5 · best -1.25 · verified 0")
