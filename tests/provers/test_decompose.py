"""The decompose strategy on real Lean 4.35 (prelude theorems, term-mode ``have`` skeletons with ``sorry``)."""

from __future__ import annotations

import pytest

from malot.agents import Budget
from malot.config import Settings
from malot.lean.file_backend import LeanFileVerifier
from malot.llm import ScriptedLLM
from malot.provers import Prover
from malot.provers.decompose.skeleton import check_skeleton, lemma_from_goal
from malot.provers.decompose.strategy import Decompose

from .decompose_script import THEOREMS, DecomposeModel, problem, settings_data

pytestmark = [pytest.mark.lean, pytest.mark.slow]


async def test_skeleton_compiles_with_holes_and_reports_goals(lean_verifier: LeanFileVerifier) -> None:
    p = problem("and_swap3")
    check = await check_skeleton(lean_verifier, p.target(), p.statement + "\n" + THEOREMS["and_swap3"][1][0])
    assert check.ok, check.reasons
    assert [h.term for h in check.holes] == [True, True]
    assert check.goals[0].endswith("⊢ p") and "h : And' p (And' q r)" in check.goals[0]
    assert "hp : p" in check.goals[1] and check.goals[1].endswith("⊢ r")
    spec = lemma_from_goal(check.goals[1], "l2", tactic=False)
    assert spec.statement == "theorem l2 (p q r : Prop) (h : And' p (And' q r)) (hp : p) : r :="
    assert spec.call() == "l2 p q r h hp"


async def test_a_skeleton_with_an_error_is_not_ok(lean_verifier: LeanFileVerifier) -> None:
    p = problem("and_swap3")
    check = await check_skeleton(
        lean_verifier, p.target(), p.statement + "\n  have hp : p := sorry\n  And'.intro hp hp"
    )
    assert not check.ok and check.errors


async def test_decompose_proves_a_multi_step_theorem_the_model_cannot_prove_whole(
    lean_verifier: LeanFileVerifier,
) -> None:
    model = DecomposeModel()
    settings = Settings.model_validate(settings_data())
    async with Prover(settings, llm=ScriptedLLM(model), verifier=lean_verifier) as prover:
        result = await prover.prove(problem("or_and"))
        whole = await prover.prove(problem("or_and"), strategy="whole-proof", rounds=0)
    assert result.proved and result.strategy == "decompose"
    assert result.proof is not None
    for k in (1, 2, 3):
        assert f"theorem or_and_step{k}" in result.proof
    assert "sorry" not in result.proof[len(problem("or_and").header) :]
    assert "(or_and_step3 p q r h hr hpq)" in result.proof  # the hole became a call with the local context
    assert not whole.proved  # the same model never proves the whole theorem
    assert model.asked[:2] == ["plan:or_and", "skeleton:or_and:0"]


async def test_a_false_step_sends_the_skeleton_back_for_revision(lean_verifier: LeanFileVerifier) -> None:
    model = DecomposeModel()
    settings = Settings.model_validate(settings_data())
    async with Prover(settings, llm=ScriptedLLM(model), verifier=lean_verifier) as prover:
        result = await prover.prove(problem("bool_step"))
    assert result.proved
    assert "skeleton:bool_step:1" in model.asked  # revised after the refutation
    assert "prove:bool_step_step1_false" in model.asked
    assert result.proof is not None and "MyBool" not in result.proof.split("theorem bool_step (")[-1]


async def test_failed_lemmas_are_decomposed_again_within_the_depth_limit(lean_verifier: LeanFileVerifier) -> None:
    model = DecomposeModel()
    async with Prover(
        Settings.model_validate(settings_data(max_depth=1)), llm=ScriptedLLM(model), verifier=lean_verifier
    ) as prover:
        deep = await prover.prove(problem("chain"))
    assert deep.proved and deep.proof is not None
    assert "theorem chain_step1_step1" in deep.proof and "skeleton:chain_step1:0" in model.asked

    shallow_model = DecomposeModel()
    async with Prover(
        Settings.model_validate(settings_data(max_depth=0)), llm=ScriptedLLM(shallow_model), verifier=lean_verifier
    ) as prover:
        shallow = await prover.prove(problem("chain"))
    assert not shallow.proved
    assert [a.status for a in shallow.attempts] == ["failed"]
    assert not any(a.startswith("skeleton:chain_step1") for a in shallow_model.asked)


async def test_the_budget_stops_decomposition_cleanly(lean_verifier: LeanFileVerifier) -> None:
    model = DecomposeModel(lemma_proofs={})
    async with Prover(
        Settings.model_validate(settings_data(max_depth=3)), llm=ScriptedLLM(model), verifier=lean_verifier
    ) as prover:
        result = await prover.prove(problem("chain"), budget=Budget(samples=4))
    assert not result.proved
    assert all(a.status in ("failed", "budget") for a in result.attempts)
    assert len([a for a in model.asked if not a.startswith("plan")]) <= 4


async def test_samples_share_the_lemma_cache(lean_verifier: LeanFileVerifier) -> None:
    model = DecomposeModel()
    settings = Settings.model_validate(settings_data())
    strategy = Decompose(rounds=1, settings=settings.decompose)
    async with Prover(settings, llm=ScriptedLLM(model), verifier=lean_verifier) as prover:
        first = await prover.prove(problem("and_swap3"), strategy=strategy)
        second = await prover.prove(problem("and_swap3"), strategy=strategy)
    assert first.proved and second.proved
    assert strategy.cache.lookups == 4 and strategy.cache.hits == 2
    assert model.asked.count("prove:and_swap3_step1") == 1
