"""``malot prove`` end to end: a scripted model, the real Lean 4.35, files written, exit codes 0 / 1 / 2."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from malot.cli.app import main

from .helpers import load_suite

RECORD = next(r for r in load_suite() if r["name"] == "or_swap")


def _script(path: Path, responses: list[str]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in responses), encoding="utf-8")
    return f"script:{path}"


def _common(tmp_path: Path, lean_exe: Path, model: str) -> list[str]:
    return ["--model", model, "--lean", str(lean_exe), "--retriever", "none", "--out", str(tmp_path / "out")]


def test_help_lists_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prove", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--file", "--theorem", "--problem", "--strategy", "--model", "--samples", "--rounds", "--json"):
        assert option in out
    assert main(["--help"]) == 0 and "prove" in capsys.readouterr().out


@pytest.mark.lean
def test_prove_from_stdin_prints_the_verified_proof(
    tmp_path: Path, lean_exe: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _script(
        tmp_path / "script.jsonl",
        ["Swap the cases.", f"  {RECORD['wrong_proof']}\n```", "Swap them back.", f"  {RECORD['proof']}\n```"],
    )
    monkeypatch.setattr("sys.stdin", io.StringIO(RECORD["header"] + RECORD["statement"] + "\n"))
    code = main(["prove", "-", "--samples", "1", "--rounds", "2", *_common(tmp_path, lean_exe, model)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert RECORD["statement"] in captured.out and RECORD["proof"] in captured.out
    assert "proved or_swap (round 1" in captured.err
    proof = (tmp_path / "out" / "proof.lean").read_text(encoding="utf-8")
    assert proof.rstrip().endswith(RECORD["proof"])
    result = json.loads((tmp_path / "out" / "result.json").read_text(encoding="utf-8"))
    assert result["proved"] and result["attempts"][0]["verdicts"] == ["failed", "verified"]
    events = [json.loads(line) for line in (tmp_path / "out" / "trace.jsonl").read_text().splitlines()]
    assert {e["type"] for e in events} >= {"note", "attempt_started", "step", "attempt_finished", "group_finished"}
    assert "framework overhead" in captured.err


@pytest.mark.lean
def test_not_proved_exits_1_with_json(tmp_path: Path, lean_exe: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lean_file = tmp_path / "T.lean"
    lean_file.write_text(RECORD["header"] + RECORD["statement"] + "\n  sorry\n", encoding="utf-8")
    model = _script(tmp_path / "script.jsonl", [f"  {RECORD['wrong_proof']}\n```"])
    args = ["prove", "--file", str(lean_file), "--theorem", "or_swap", "--strategy", "whole-proof"]
    args += ["--template", "deepseek-prover-v1.5", "--samples", "1", "--json", *_common(tmp_path, lean_exe, model)]
    code = main(args)
    out = json.loads(capsys.readouterr().out)
    assert code == 1
    assert out["proved"] is False and out["strategy"] == "whole-proof" and out["lean_checks"] == 1
    assert out["attempts"][0]["last_error"].startswith("line ")
    assert not (tmp_path / "out" / "proof.lean").exists()


def test_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prove", "--problem", "minif2f:no_such_problem", "--out", str(tmp_path)]) == 2
    assert "no MiniF2F problem named 'no_such_problem'" in capsys.readouterr().err
    assert main(["prove", "--file", str(tmp_path / "x.lean"), "--out", str(tmp_path)]) == 2
    assert "--file needs --theorem" in capsys.readouterr().err
    assert main(["prove", "theorem t : True :=", "--problem", "minif2f:x", "--out", str(tmp_path)]) == 2
