"""APOLLO-style repair (``--repair``): cut a failed proof at its failing steps, prove them as lemmas, keep the rest."""

from __future__ import annotations

import re

import pytest

from malot.config import Settings
from malot.lean.file_backend import LeanFileVerifier
from malot.llm import GenerationRequest, ScriptedLLM, prompt_text
from malot.provers import Prover
from malot.provers.decompose.repair import cut_failing_steps

from .decompose_script import problem, settings_data

HALF_RIGHT = (
    "```lean4\ntheorem and_swap3 (p q r : Prop) (h : And' p (And' q r)) : And' r p :=\n"
    "  have hp : p := And'.rec (motive := fun _ => p) (fun hp _ => hp) h\n"
    "  have hr : r := And'.rec (motive := fun _ => r) (fun hp _ => hp) h\n"
    "  And'.intro hr hp\n```"
)
R_PROOF = "And'.rec (motive := fun _ => r) (fun _ hqr => And'.rec (motive := fun _ => r) (fun _ hr => hr) hqr) h"


def test_cut_replaces_failing_steps_and_tactic_lines() -> None:
    code = (
        "theorem t : P := by\n"
        "  have h1 : A := by\n"
        "    simp\n"
        "    linarith\n"
        "  have h2 : B := foo\n"
        "  nlinarith [h1, h2]\n"
        "  exact bar"
    )
    errors = [{"line": 4, "column": 4, "data": "linarith failed"}, {"line": 7, "column": 2, "data": "bad"}]
    cut, steps = cut_failing_steps(code, errors, start_line=2)
    assert steps == 2
    assert cut.split("\n") == [
        "theorem t : P := by",
        "  have h1 : A := by sorry",
        "  have h2 : B := foo",
        "  nlinarith [h1, h2]",
        "  sorry",
    ]
    assert cut_failing_steps(code, [{"line": 1, "column": 0, "data": "header"}], start_line=2) == (code, 0)


@pytest.mark.lean
async def test_whole_proof_with_repair_keeps_the_good_step_and_proves_the_cut_one(
    lean_verifier: LeanFileVerifier,
) -> None:
    asked: list[str] = []

    def answer(request: GenerationRequest) -> str:
        text = prompt_text(request)
        name = re.findall(r"theorem\s+([^\s(:]+)", text)[-1]
        asked.append(name)
        if name == "and_swap3":
            return HALF_RIGHT
        if name == "and_swap3_step1":
            return f"```lean4\n{R_PROOF}\n```"
        return "```lean4\nTrue'.intro\n```"

    data = settings_data()
    data["prover"] = {**data["prover"], "strategy": "whole-proof"}
    async with Prover(Settings.model_validate(data), llm=ScriptedLLM(answer), verifier=lean_verifier) as prover:
        plain = await prover.prove(problem("and_swap3"), samples=1)
    assert not plain.proved

    data["decompose"] = {**data["decompose"], "repair": True}
    async with Prover(Settings.model_validate(data), llm=ScriptedLLM(answer), verifier=lean_verifier) as prover:
        repaired = await prover.prove(problem("and_swap3"), samples=1)
    assert repaired.proved and repaired.proof is not None
    assert "theorem and_swap3_step1 (p q r : Prop) (h : And' p (And' q r)) (hp : p) : r" in repaired.proof
    assert "have hp : p := And'.rec (motive := fun _ => p) (fun hp _ => hp) h" in repaired.proof  # kept
    assert repaired.attempts[0].verdicts == ["failed", "verified"]
    assert asked.count("and_swap3") == 2  # one whole proof per run: repair drew no new whole proof


@pytest.mark.lean
async def test_ma_lot_with_repair_routes_failures_through_repair_first(lean_verifier: LeanFileVerifier) -> None:
    from malot.provers.strategies import make_strategy

    data = settings_data()
    data["decompose"] = {**data["decompose"], "repair": True}
    strategy = make_strategy("ma-lot", rounds=1, settings=Settings.model_validate(data))
    assert strategy.describe()["repair"] is True
    assert "repair" in strategy.workflow().agents
