"""The Python API: ``prove()`` and ``Prover`` building (and closing) the LLM and verifier from settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from malot.config import Settings
from malot.errors import ConfigError
from malot.lean.base import CheckResult, LeanMessage, Position
from malot.llm import ScriptedLLM
from malot.provers import Prover, prove, trace_summary
from malot.provers.feedback import format_errors, mark_errors, messages_of

from .helpers import load_suite, problem_of

RECORD = next(r for r in load_suite() if r["name"] == "eq_trans")


@pytest.mark.lean
async def test_prove_builds_llm_and_verifier_from_settings(tmp_path: Path, lean_exe: Path) -> None:
    script = tmp_path / "answers.jsonl"
    script.write_text(json.dumps(f"  {RECORD['proof']}\n```") + "\n", encoding="utf-8")
    settings = Settings.model_validate(
        {
            "llm": {"model": f"script:{script}"},
            "lean": {"lean_path": str(lean_exe), "sandbox": "off"},
            "prover": {"strategy": "whole-proof", "template": "deepseek-prover-v1.5", "samples": 1},
            "retrieval": {"retriever": "none"},
        }
    )
    result = await prove(problem_of(RECORD), settings=settings, trace=tmp_path / "trace.jsonl")
    assert result.proved and result.model == f"script:{script}"
    assert result.exit_code == 0
    summary = trace_summary(tmp_path / "trace.jsonl")
    assert summary["groups"] == 1 and summary["solved"] == 1 and summary["lean_checks"] == 1
    assert summary["mean_framework_overhead_ms_per_attempt"] == pytest.approx(
        result.summary["mean_framework_overhead_ms_per_attempt"]
    )


@pytest.mark.lean
async def test_prover_is_reusable_and_closes_what_it_owns(tmp_path: Path, lean_exe: Path) -> None:
    llm = ScriptedLLM([f"  {RECORD['wrong_proof']}\n```", f"  {RECORD['proof']}\n```"])
    settings = Settings.model_validate(
        {
            "lean": {"lean_path": str(lean_exe), "sandbox": "off"},
            "prover": {"strategy": "whole-proof", "template": "deepseek-prover-v1.5", "samples": 1},
            "retrieval": {"retriever": "none"},
        }
    )
    async with Prover(settings, llm=llm) as prover:
        first = await prover.prove(problem_of(RECORD))
        second = await prover.prove(problem_of(RECORD))
        verifier = prover.verifier
    assert not first.proved and second.proved
    assert prover.verifier is None and verifier is not None  # the verifier it built is closed and dropped
    assert not llm.closed  # an LLM passed in stays open


async def test_prove_needs_an_open_prover() -> None:
    prover = Prover(Settings())
    with pytest.raises(ConfigError, match="not open"):
        await prover.prove("theorem t : True := by")


def test_feedback_marks_errors_inline() -> None:
    error = LeanMessage(severity="error", pos=Position(line=2, column=2), data="unsolved goals\nh : p\n⊢ q")
    follow_up = LeanMessage(severity="error", pos=Position(line=2, column=0), data="internal exception #3")
    messages = messages_of(CheckResult(id="x", messages=[error, follow_up]))
    assert messages == [{"line": 2, "column": 2, "data": "unsolved goals\nh : p\n⊢ q", "goal": "h : p\n⊢ q"}]
    code = "theorem t (h : p) : q := by\n  skip\n\n#print axioms t\n"
    marked = "theorem t (h : p) : q := by\n  skip\n  -- error (line 2, column 2): unsolved goals"
    assert mark_errors(code, messages) == marked
    assert "goal state at the error:\nh : p\n⊢ q" in format_errors(messages)


@pytest.mark.lean
def test_readme_example_runs(lean_exe: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Proving", 1)[1]
    code = section.split("```python\n", 1)[1].split("\n```", 1)[0]
    code = code.replace('"/tmp/malot-lean"', repr(str(lean_exe.parent)))
    exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})
    out = capsys.readouterr().out
    assert out.startswith("True in round 1 | verdicts: ['failed', 'verified']")
    assert "theorem zero_eq : Eq' MyNat.zero MyNat.zero :=\n  Eq'.refl" in out
