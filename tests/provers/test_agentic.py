"""``--strategy agentic`` on prelude theorems with the real Lean 4.35 fixture: the model checks drafts with
``lean_check`` while it works, and only the final answer's verdict (the acceptance rule) counts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from malot.lean.file_backend import LeanFileVerifier
from malot.llm import ScriptedLLM
from malot.provers import Prover
from malot.provers.registry import strategy_names

from .helpers import load_suite, problem_of, settings

pytestmark = pytest.mark.lean

SUITE = {r["name"]: r for r in load_suite()}
RECORD = SUITE["zero_eq_zero"]


def draft(proof: str) -> str:
    return f"{RECORD['statement']}\n  {proof}"


def check(proof: str) -> dict[str, Any]:
    return {"tool_calls": [{"name": "lean_check", "arguments": {"code": draft(proof)}}]}


def answer(proof: str) -> str:
    return f"Lean accepted it.\n```lean4\n{draft(proof)}\n```"


def tool_results(llm: ScriptedLLM, request: int) -> list[dict[str, Any]]:
    prompt = llm.requests[request].prompt
    assert isinstance(prompt, list)
    return [json.loads(m.content) for m in prompt if m.role == "tool"]


def test_agentic_is_a_registered_strategy() -> None:
    assert "agentic" in strategy_names()


async def test_the_model_checks_a_wrong_draft_reads_the_error_and_answers_an_accepted_proof(
    lean_verifier: LeanFileVerifier,
) -> None:
    llm = ScriptedLLM([check(RECORD["wrong_proof"]), answer(RECORD["proof"])])
    async with Prover(settings(samples=1, rounds=0), llm=llm, verifier=lean_verifier) as prover:
        result = await prover.prove(problem_of(RECORD), strategy="agentic")
    (verdict,) = tool_results(llm, 1)
    assert verdict["accepted"] is False and verdict["errors"] and verdict["errors"][0]["data"]
    assert llm.requests[0].tools and {t["function"]["name"] for t in llm.requests[0].tools} == {
        "lean_check",
        "retrieve_demos",
    }
    assert result.proved and result.proof is not None and RECORD["proof"] in result.proof
    assert result.strategy == "agentic"


async def test_an_in_loop_acceptance_never_counts_as_the_verdict(lean_verifier: LeanFileVerifier) -> None:
    # lean_check accepts the right proof, then the model answers the wrong one: the final check rejects it
    llm = ScriptedLLM([check(RECORD["proof"]), answer(RECORD["wrong_proof"])])
    async with Prover(settings(samples=1, rounds=0), llm=llm, verifier=lean_verifier) as prover:
        result = await prover.prove(problem_of(RECORD), strategy="agentic")
    assert tool_results(llm, 1)[0]["accepted"] is True
    assert not result.proved and result.lean_checks == 1


async def test_tool_calls_are_bounded_and_a_rejected_answer_goes_back_for_another_round(
    lean_verifier: LeanFileVerifier,
) -> None:
    from malot.provers.agentic import Agentic

    two_checks = {"tool_calls": check(RECORD["wrong_proof"])["tool_calls"] + check(RECORD["proof"])["tool_calls"]}
    llm = ScriptedLLM(
        [
            two_checks,  # the second call is over the limit of 1: refused, and the tools are withdrawn
            answer(RECORD["wrong_proof"]),  # rejected by the acceptance rule
            answer(RECORD["proof"]),  # second round, after the verdict came back
        ]
    )
    async with Prover(settings(samples=1), llm=llm, verifier=lean_verifier) as prover:
        result = await prover.prove(problem_of(RECORD), strategy=Agentic(rounds=1, max_tool_calls=1))
    assert result.proved and result.lean_checks == 2
    assert llm.requests[1].tools == [] and llm.requests[2].tools == []  # no calls left
    first, refused = tool_results(llm, 1)
    assert first["accepted"] is False and "no tool calls left" in refused["error"]
    last = llm.requests[2].prompt
    assert isinstance(last, list) and "rejected that answer" in last[-1].content
