"""A budget that ends a proof before any candidate was drawn is an error (``BudgetExhaustedError``), not a quiet
"not proved"; a budget that ends a proof after candidates were tried is a result with ``stopped`` set."""

from __future__ import annotations

from pathlib import Path

import pytest

from malot.agents import Budget
from malot.cli.app import main
from malot.errors import BudgetExhaustedError
from malot.lean.file_backend import LeanFileVerifier
from malot.llm import ScriptedLLM
from malot.provers import Prover

from .helpers import load_suite, lot_answers, problem_of, settings

SUITE = {r["name"]: r for r in load_suite()}
AND_SWAP = SUITE["and_swap"]


@pytest.mark.lean
async def test_a_budget_spent_before_any_candidate_raises(lean_verifier: LeanFileVerifier) -> None:
    llm = ScriptedLLM(lot_answers(SUITE))
    async with Prover(settings(samples=2, rounds=1), llm=llm, verifier=lean_verifier) as prover:
        with pytest.raises(BudgetExhaustedError, match="samples budget was spent before any proof of and_swap"):
            await prover.prove(problem_of(AND_SWAP), budget=Budget(samples=0))
        assert llm.requests == []
        # candidates were tried, then the samples ran out: a result, not an error
        result = await prover.prove(problem_of(AND_SWAP), budget=Budget(samples=1))
        assert result.stopped == "samples" and result.summary["candidates"] >= 1


@pytest.mark.lean
def test_malot_prove_exits_2_naming_the_budget(
    tmp_path: Path, lean_exe: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "s.jsonl"
    script.write_text('"x"\n', encoding="utf-8")
    monkeypatch.setenv("MALOT_BUDGET__WALL_SECONDS", "1e-9")  # over before the first step
    code = main(
        ["prove", AND_SWAP["header"] + AND_SWAP["statement"], "--model", f"script:{script}", "--lean", str(lean_exe),
         "--retriever", "none", "--out", str(tmp_path / "o")]
    )  # fmt: skip
    assert code == 2
    assert "error: the wall-time budget was spent before any proof" in capsys.readouterr().err
