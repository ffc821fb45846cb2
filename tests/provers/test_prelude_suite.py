"""The prelude theorem suite, proved end to end: a scripted LLM answers wrongly, then correctly, and the real
Lean 4.35 decides every verdict (each wrong proof must be rejected by Lean and each correct one accepted)."""

from __future__ import annotations

import asyncio
import re
from collections import Counter

import pytest

from malot.lean.file_backend import LeanFileVerifier
from malot.llm import GenerationRequest, ScriptedLLM, prompt_text
from malot.provers import Problem, Prover

from .helpers import load_suite, lot_answers, problem_of, settings

SUITE = load_suite()
BY_NAME = {r["name"]: r for r in SUITE}


def test_suite_format() -> None:
    assert len(SUITE) >= 30
    assert len(BY_NAME) == len(SUITE)
    for record in SUITE:
        assert set(record) == {"name", "informal", "header", "statement", "proof", "wrong_proof"}
        assert record["header"].startswith("prelude\n") and record["header"].endswith("\n")
        assert record["statement"].startswith(f"theorem {record['name']} ")
        assert record["statement"].endswith(":=")
        assert "sorry" not in record["proof"] and record["proof"] != record["wrong_proof"]
        problem = Problem.from_statement(record["header"] + record["statement"], informal=record["informal"])
        assert problem == problem_of(record)  # a statement string with its header parses to the same problem


@pytest.mark.lean
async def test_ma_lot_proves_the_suite_after_one_correction(lean_verifier: LeanFileVerifier) -> None:
    llm = ScriptedLLM(lot_answers(BY_NAME, wrong_rounds=1))
    async with Prover(settings(samples=1, rounds=2), llm=llm, verifier=lean_verifier) as prover:
        results = await asyncio.gather(*(prover.prove(problem_of(r)) for r in SUITE))
    failures = [r.problem for r in results if not (r.proved and r.proof_round == 1)]
    assert failures == []
    for record, result in zip(SUITE, results, strict=True):
        assert result.attempts[0].verdicts == ["failed", "verified"]  # Lean rejected the wrong proof first
        assert result.lean_checks == 2
        assert result.proof is not None
        assert record["statement"] in result.proof and result.proof.rstrip().endswith(record["proof"])
    assert sum(r.summary["mean_framework_overhead_ms_per_attempt"] for r in results) / len(results) < 250


@pytest.mark.lean
async def test_whole_proof_on_the_suite(lean_verifier: LeanFileVerifier) -> None:
    """Whole-proof sampling: of 2 samples one answer is wrong and one right; Lean tells them apart."""
    records = SUITE[:10]

    def answer(request: GenerationRequest) -> str:
        name = re.findall(r"theorem (\S+)", prompt_text(request))[-1]
        record = BY_NAME[name]
        proof = record["proof"] if request.params.seed == 1 else record["wrong_proof"]
        return f"  {proof}\n```"

    llm = ScriptedLLM(answer)
    cfg = settings(samples=2, strategy="whole-proof", template="deepseek-prover-v1.5", seed=0)
    async with Prover(cfg, llm=llm, verifier=lean_verifier) as prover:
        results = await asyncio.gather(*(prover.prove(problem_of(r)) for r in records))
    assert all(r.proved and r.template == "deepseek-prover-v1.5" for r in results)
    verdicts = Counter(v for r in results for a in r.attempts for v in a.verdicts)
    assert verdicts["verified"] == len(records)
    assert all(r.rounds == 0 and r.proof_round == 0 for r in results)


@pytest.mark.lean
@pytest.mark.parametrize(("strategy", "template"), [("whole-proof", "deepseek-prover-v1.5"), ("ma-lot", "lot-solver")])
async def test_statement_ending_in_by_is_kept_and_checked(
    lean_verifier: LeanFileVerifier, strategy: str, template: str
) -> None:
    """A MiniF2F-form statement (``:= by``): the prompt pre-fills ``:= by``, the answer is spliced after it, and
    Lean reaches the tactic block (this Lean has no tactics, so it rejects ``exact`` as an unknown tactic, at the
    proof's own line and column, not at the statement)."""
    record = BY_NAME["and_swap"]
    problem = Problem.from_statement(record["header"] + record["statement"] + " by")
    assert problem.statement.endswith(":= by") and not problem.term_mode
    answer = "  exact And'.rec (fun hp hq => And'.intro hq hp) h\n```"
    llm = ScriptedLLM(lambda r: answer if prompt_text(r).endswith("\n") else "Swap the two parts.")
    cfg = settings(samples=1, rounds=0, strategy=strategy, template=template)
    async with Prover(cfg, llm=llm, verifier=lean_verifier) as prover:
        result = await prover.prove(problem)
    assert llm.prompts[-1].endswith(problem.statement + "\n")  # the Lean block the model continues
    assert not result.proved and result.lean_checks == 1
    proof_line = (problem.header + problem.statement).count("\n") + 2
    # Lean puts "unknown tactic" one column into the identifier after the two-space indent
    assert result.attempts[0].last_error == f"line {proof_line}, column 3: unknown tactic (+1 more)"
