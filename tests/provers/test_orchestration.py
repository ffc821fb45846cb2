"""Orchestration of MA-LoT and whole-proof with the scripted LLM and the real Lean 4.35 deciding every verdict."""

from __future__ import annotations

import re
import time

import pytest

from malot.agents import Budget
from malot.lean.file_backend import LeanFileVerifier
from malot.llm import GenerationRequest, ScriptedLLM, prompt_text
from malot.provers import Prover

from .helpers import load_suite, lot_answers, problem_of, settings

pytestmark = pytest.mark.lean

SUITE = {r["name"]: r for r in load_suite()}
AND_SWAP = SUITE["and_swap"]


async def test_correct_on_first_sample(lean_verifier: LeanFileVerifier) -> None:
    llm = ScriptedLLM(lot_answers(SUITE, wrong_rounds=0))
    async with Prover(settings(samples=1, rounds=2), llm=llm, verifier=lean_verifier) as prover:
        result = await prover.prove(problem_of(AND_SWAP))
    assert result.proved and result.proof_round == 0
    assert result.attempts[0].verdicts == ["verified"]
    assert result.proof is not None and result.proof.rstrip().endswith(AND_SWAP["proof"])
    assert result.lean_checks == 1
    # two passes: the thought stops at </Thought>, then the pre-filled Lean block with header and statement
    first, second = llm.requests
    assert first.params.stop == ["</Thought>"]
    assert first.params.max_tokens == int(8192 * 0.75)
    second_text = prompt_text(second)
    assert second_text.endswith(
        "<Output>\n```lean4\n"
        + AND_SWAP["header"]
        + "/-- Conjunction is commutative. -/\n"
        + AND_SWAP["statement"]
        + "\n"
    )
    assert second.params.temperature == 0.8 and second.params.top_p == 0.8
    assert not llm.closed  # the prover does not close an LLM it was given


async def test_wrong_then_corrected_in_round_two_chained(lean_verifier: LeanFileVerifier) -> None:
    llm = ScriptedLLM(lot_answers(SUITE, wrong_rounds=2))
    async with Prover(settings(samples=1, rounds=2), llm=llm, verifier=lean_verifier) as prover:
        result = await prover.prove(problem_of(AND_SWAP))
    assert result.proved and result.proof_round == 2
    assert result.attempts[0].verdicts == ["failed", "failed", "verified"]
    assert result.lean_checks == 2  # round 1 repeated round 0's wrong proof: the verdict cache answered
    prompts = llm.prompts
    round1, round2 = prompts[2], prompts[4]
    # round 1 corrects round 0: Lean's error with line and column, marked inline in the previous proof
    assert "Here are the error messages" in round1 and "Earlier attempts" not in round1
    assert re.search(r"line \d+, column \d+:\nApplication type mismatch", round1)
    assert re.search(r"\n  -- error \(line \d+, column \d+\): Application type mismatch", round1)
    assert "My previous reasoning was:" in round1
    # round 2 corrects round 1's failure, with round 0's attempt as history (chained, not parallel)
    assert "Earlier attempts that Lean also rejected" in round2 and "Attempt 1 failed with: line " in round2
    assert re.search(r"```lean4\n/-- Conjunction is commutative. -/\n+theorem and_swap", round2)  # no header


async def test_sorry_proof_rejected_without_lean(lean_verifier: LeanFileVerifier) -> None:
    def answer(request: GenerationRequest) -> str:
        return "  sorry\n```" if "<Output>" in prompt_text(request) else "give up"

    llm = ScriptedLLM(answer)
    async with Prover(settings(samples=2, rounds=1), llm=llm, verifier=lean_verifier) as prover:
        result = await prover.prove(problem_of(AND_SWAP))
    assert not result.proved
    assert result.lean_checks == 0  # the source screen rejects `sorry` before Lean runs
    assert all(a.verdicts == ["failed", "failed"] for a in result.attempts)
    assert any("sorry" in (a.last_error or "") for a in result.attempts)


async def test_no_code_block_fails_fast(lean_verifier: LeanFileVerifier) -> None:
    llm = ScriptedLLM(["I would rather describe the proof in words: swap the components."] * 3)
    cfg = settings(samples=3, strategy="whole-proof", template="kimina-prover")
    async with Prover(cfg, llm=llm, verifier=lean_verifier) as prover:
        result = await prover.prove(problem_of(AND_SWAP))
    assert not result.proved and result.strategy == "whole-proof"
    assert result.lean_checks == 0
    assert [a.last_error for a in result.attempts] == ["no Lean code block"] * 3


async def test_empty_and_truncated_outputs(lean_verifier: LeanFileVerifier) -> None:
    # sample 0: an empty answer; sample 1: the proof, then a loop of one comment line until max_tokens ran out
    looping = "  " + AND_SWAP["proof"] + "\n" + "  -- and so on\n" * 40 + "  -- and s"

    def answer(request: GenerationRequest) -> dict[str, str]:
        if request.params.seed == 0:
            return {"text": "", "finish_reason": "stop"}
        return {"text": looping, "finish_reason": "length"}

    llm = ScriptedLLM(lambda r: [answer(r)])  # type: ignore[list-item]
    cfg = settings(samples=2, strategy="whole-proof", template="deepseek-prover-v1.5", seed=0)
    async with Prover(cfg, llm=llm, verifier=lean_verifier) as prover:
        result = await prover.prove(problem_of(AND_SWAP))
    by_index = {a.index: a for a in result.attempts}
    assert by_index[0].last_error == "empty output" and by_index[0].status == "failed"
    assert result.proved and by_index[1].status == "success"
    assert result.lean_checks == 1  # the empty answer never reached Lean
    assert result.proof is not None and result.proof.count("-- and so on") == 1  # the loop was cut to one copy


async def test_budget_exhausted_stops_corrections(lean_verifier: LeanFileVerifier) -> None:
    llm = ScriptedLLM(lot_answers(SUITE, wrong_rounds=5))
    async with Prover(settings(samples=2, rounds=2), llm=llm, verifier=lean_verifier) as prover:
        result = await prover.prove(problem_of(AND_SWAP), budget=Budget(samples=2))
    assert not result.proved
    assert result.stopped == "samples"
    assert [a.status for a in result.attempts] == ["budget", "budget"]
    assert result.usage["samples"] == 2
    assert len(llm.requests) == 4  # two samples, two passes each; no corrector call


async def test_first_success_cancels_other_attempts(lean_verifier: LeanFileVerifier) -> None:
    wrong_or_right = lot_answers(SUITE, wrong_rounds=0)

    def answer(request: GenerationRequest) -> str:
        text = wrong_or_right(request)
        if request.params.seed not in (None, 0) and "<Output>" in prompt_text(request):
            return f"  {AND_SWAP['wrong_proof']}\n```"  # samples 1-3 are wrong and go to the (slow) corrector
        return text

    def slow_corrector(request: GenerationRequest) -> float:  # corrector prompts wait a long time (a slow GPU)
        return 60.0 if "Here are the error messages" in prompt_text(request) else 0.0

    llm = ScriptedLLM(answer, latency_s=slow_corrector)
    started = time.perf_counter()
    async with Prover(settings(samples=4, rounds=2, seed=0), llm=llm, verifier=lean_verifier) as prover:
        result = await prover.prove(problem_of(AND_SWAP))
    assert time.perf_counter() - started < 20
    assert result.proved and result.stopped == "first_success"
    by_index = {a.index: a.status for a in result.attempts}
    assert by_index == {0: "success", 1: "cancelled", 2: "cancelled", 3: "cancelled"}
    assert result.summary["statuses"] == {"cancelled": 3, "success": 1}


async def test_sibling_samples_share_one_llm_call(lean_verifier: LeanFileVerifier) -> None:
    llm = ScriptedLLM(lot_answers(SUITE, wrong_rounds=5))
    async with Prover(settings(samples=4, rounds=1), llm=llm, verifier=lean_verifier) as prover:
        result = await prover.prove(problem_of(AND_SWAP))
    assert not result.proved
    # pass 1 (the n thoughts), pass 2 (the n proofs), then the corrector's two passes: 4 batched calls of 4
    assert [len(call) for call in llm.calls] == [4, 4, 4, 4]
    assert llm.calls[0][0].params.stop == ["</Thought>"]
