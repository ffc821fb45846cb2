"""``malot eval``: the default ``run`` subcommand, --help, report, compare and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from malot.cli.app import main
from tests.eval.toy_solver import verifies

SUITE = Path(__file__).resolve().parents[1] / "data" / "prelude_suite" / "prelude_suite.jsonl"
TOY = ["--solver", "tests.eval.toy_solver:toy_solver", "--model", "toy", "--no-progress"]


def test_help_shows_every_form_and_the_run_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--help"]) == 0
    out = capsys.readouterr().out
    for text in ("DATASET [OPTIONS]", "--resume RUN", "report", "compare", "--samples", "--model", "--out", "--ray"):
        assert text in out
    assert main(["eval", "report", "--help"]) == 0
    assert "Markdown" in capsys.readouterr().out


def test_run_report_compare(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["eval", str(SUITE), *TOY, "--samples", "3", "--out", str(a), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["problems"] == 40 and result["done"] == 40
    assert set(result["pass_at_k"]) == {"1", "2", "3"}
    assert Path(result["report"]["markdown"]).is_file() and Path(result["report"]["pass_at_k"]).is_file()
    assert main(["eval", str(SUITE), *TOY, "--samples", "1", "--out", str(b), "--count", "20", "--no-report"]) == 0
    capsys.readouterr()

    assert main(["eval", "report", str(b), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["summary"]["problems"] == 20 and (b / "report" / "solved_by_category.png").is_file()

    assert main(["eval", "compare", str(a), str(b), "--json"]) == 0
    cmp = json.loads(capsys.readouterr().out)
    assert cmp["common_problems"] == 20
    names = [json.loads(line)["name"] for line in SUITE.read_text(encoding="utf-8").splitlines()][:20]
    assert cmp["only_b"] == []  # b's one sample is a's first sample: nothing b solves that a misses
    assert cmp["only_a"] == [n for n in names if not verifies(n, 0) and (verifies(n, 1) or verifies(n, 2))]
    assert cmp["solved_by_both"] == [n for n in names if verifies(n, 0)]
    assert Path(cmp["files"]["plot"]).is_file()


def test_errors_are_one_line_with_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"name": "x", "formal_statement": "theorem x : True := by"}\n{oops}\n', encoding="utf-8")
    assert main(["eval", str(bad), *TOY, "--out", str(tmp_path / "r")]) == 2
    assert f"{bad}:2: not valid JSON" in capsys.readouterr().err
    assert main(["eval", "minif2f", *TOY, "--filter", "mathd_algebra_4788", "--out", str(tmp_path / "r")]) == 2
    assert "close matches: mathd_algebra_478" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    assert main(["eval", "--resume", str(tmp_path / "nothing")]) == 2
    assert "no malot run" in capsys.readouterr().err
    assert main(["eval"]) == 2
    assert "give a DATASET" in capsys.readouterr().err
