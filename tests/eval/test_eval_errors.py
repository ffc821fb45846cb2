"""``malot eval`` tells "could not attempt" (errors) from "attempted and failed": errors on the console, exit 2 when
no problem could be attempted, and ``--resume`` retries the errored problems by default (``--keep-errors``: not)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from malot.cli.app import main
from tests.provers.helpers import load_suite

SUITE = Path(__file__).resolve().parents[1] / "data" / "prelude_suite" / "prelude_suite.jsonl"


def _script(path: Path, mapping: dict[str, str]) -> str:
    path.write_text(json.dumps(mapping), encoding="utf-8")
    return f"script:{path}"


@pytest.mark.lean
def test_total_failure_is_an_error_and_resume_retries_it(
    tmp_path: Path, lean_exe: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = _script(tmp_path / "broken.json", {"a prompt no prover writes": "x"})  # every call: LLMError
    run = tmp_path / "run"
    common = ["--lean", str(lean_exe), "--no-progress", "--json"]
    args = ["eval", str(SUITE), "--count", "2", "--samples", "1", "--strategy", "whole-proof"]
    args += ["--model", broken, "--out", str(run), *common]
    assert main(args) == 2
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["errored_this_session"] == 2 and summary["solved"] == 0
    assert "2 of 2 problem(s) could not be attempted" in captured.err
    assert "scripted model has no response for prompt" in captured.err
    assert "no problem could be attempted" in captured.err and f"malot eval --resume {run}" in captured.err

    # --keep-errors: the errored problems stay as they were
    assert main(["eval", "--resume", str(run), "--keep-errors", *common]) == 0
    assert json.loads(capsys.readouterr().out)["finished_this_session"] == 0

    # by default --resume retries them; with the model fixed (the run keeps its model) both are attempted now
    records = {r["name"]: r for r in load_suite()}
    first_two = [json.loads(line)["name"] for line in SUITE.read_text(encoding="utf-8").splitlines()[:2]]
    _script(tmp_path / "broken.json", {f"theorem {n} ": f"  {records[n]['proof']}\n```" for n in first_two})
    assert main(["eval", "--resume", str(run), *common]) == 0
    captured = capsys.readouterr()
    resumed = json.loads(captured.out)
    assert resumed["finished_this_session"] == 2 and resumed["errored_this_session"] == 0
    assert resumed["solved"] == 2 and "retrying 2 problem(s)" in captured.err


@pytest.mark.lean
def test_a_partial_failure_is_reported_but_not_fatal(
    tmp_path: Path, lean_exe: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = load_suite()
    first = records[0]
    partial = _script(tmp_path / "partial.json", {f"theorem {first['name']} ": f"  {first['proof']}\n```"})
    args = ["eval", str(SUITE), "--count", "2", "--samples", "1", "--strategy", "whole-proof", "--model", partial]
    args += ["--out", str(tmp_path / "run"), "--lean", str(lean_exe), "--no-progress"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "1 of 2 problem(s) could not be attempted" in err and "no problem could be attempted" not in err


def test_retry_flags_belong_to_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(SUITE), "--keep-errors", "--out", str(tmp_path / "r")]) == 2
    assert "only apply with --resume" in capsys.readouterr().err
