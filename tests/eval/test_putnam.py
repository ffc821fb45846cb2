"""PutnamBench as shipped: every problem parses, both answer modes, and the produced-solution check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from malot.data import PUTNAMBENCH_JSONL
from malot.errors import DatasetError
from malot.eval.datasets import load_dataset
from malot.eval.putnam import check_solution, load_putnambench, produced_target, putnam_entries


def test_all_672_problems_parse_and_346_have_a_solution_to_fill() -> None:
    entries = putnam_entries()
    assert len(entries) == 672
    assert sum(e.solution_name is not None for e in entries) == 346
    rows = [json.loads(line) for line in PUTNAMBENCH_JSONL.read_text(encoding="utf-8").splitlines()]
    for entry, row in zip(entries, rows, strict=True):
        assert entry.name == row["name"]
        assert entry.statement.startswith(f"theorem {entry.name}") and entry.statement.endswith(":= by")
        assert "sorry" not in entry.statement and "sorry" not in entry.header
        assert entry.header.startswith("import Mathlib")


def test_given_mode_substitutes_the_published_answer() -> None:
    dataset = load_dataset("putnambench")
    problem = dataset.get("putnam_1962_a5")
    assert "abbrev putnam_1962_a5_solution : ℕ → ℕ := fun n : ℕ => n * (n + 1) * 2^(n - 2)\n" in problem.header
    assert "sorry" not in problem.header
    noncomputable = dataset.get("putnam_1963_a3")
    assert "noncomputable abbrev putnam_1963_a3_solution : (ℝ → ℝ) → ℕ → ℝ → ℝ → ℝ := fun" in noncomputable.header
    assert dataset.get("putnam_1962_a1").header == "import Mathlib\n\nopen MeasureTheory\n\n"


def test_produced_mode_names_the_solution_but_never_shows_the_answer() -> None:
    given = load_putnambench("given")
    produced = load_dataset("putnambench:produced")
    entries = {e.name: e for e in putnam_entries()}
    for g, p in zip(given.problems, produced.problems, strict=True):
        assert g.statement == p.statement
        entry = entries[p.name]
        if entry.solution_name is None:
            assert g.header == p.header
        else:
            assert entry.solution_answer is not None and f":= {entry.solution_answer}" not in p.header
            assert ":= ...`" in p.header and "-- " + entry.solution_answer not in p.header
            assert f"`{entry.solution_keyword} {entry.solution_name} : {entry.solution_type} := ...`" in p.header
    with pytest.raises(DatasetError):
        load_putnambench("guessed")


_ENTRY = next(e for e in putnam_entries() if e.name == "putnam_1962_a5")
_GOOD = (
    "abbrev putnam_1962_a5_solution : ℕ → ℕ := fun n => n * (n + 1) * 2 ^ (n - 2)\n\n"
    + _ENTRY.statement
    + "\n  intro n hn\n  sorry_free_proof_here\n"
)


def _check(candidate: str) -> list[str]:
    assert _ENTRY.solution_name is not None and _ENTRY.solution_type is not None
    return check_solution(
        candidate,
        solution_name=_ENTRY.solution_name,
        solution_type=_ENTRY.solution_type,
        theorem_name=_ENTRY.name,
        statement=_ENTRY.statement,
    ).reasons


def test_the_solution_check_accepts_a_plain_solution_and_builds_the_target() -> None:
    assert _check(_GOOD) == []
    assert _ENTRY.solution_name is not None and _ENTRY.solution_type is not None
    check = check_solution(
        _GOOD,
        solution_name=_ENTRY.solution_name,
        solution_type=_ENTRY.solution_type,
        theorem_name=_ENTRY.name,
        statement=_ENTRY.statement,
    )
    target = produced_target(_ENTRY.header_for("produced"), _ENTRY.statement, _ENTRY.name, check)
    assert target.header.endswith("fun n => n * (n + 1) * 2 ^ (n - 2)\n\n") and target.statement == _ENTRY.statement


def test_the_solution_check_rejects_sorry_axioms_changed_types_and_statements() -> None:
    left_as_sorry = _GOOD.replace("fun n => n * (n + 1) * 2 ^ (n - 2)", "sorry")
    assert any("defined with sorry" in r for r in _check(left_as_sorry))
    through_axiom = "axiom answer : ℕ → ℕ\n\nabbrev putnam_1962_a5_solution : ℕ → ℕ := answer\n\n" + _ENTRY.statement
    assert any("axiom answer" in r for r in _check(through_axiom))
    opaque = "opaque answer : ℕ → ℕ\n\nabbrev putnam_1962_a5_solution : ℕ → ℕ := answer\n\n" + _ENTRY.statement
    assert any("opaque answer" in r for r in _check(opaque))
    changed = _GOOD.replace("∀ n ≥ 2", "∀ n ≥ 3")
    assert any("statement of putnam_1962_a5 was changed" in r for r in _check(changed))
    retyped = _GOOD.replace("_solution : ℕ → ℕ", "_solution : ℕ → ℤ")
    assert any("must keep its type" in r for r in _check(retyped))
    helper_def = "def helper : ℕ := 2\n\n" + _GOOD
    assert any("def helper" in r for r in _check(helper_def))
    assert any("exactly once" in r for r in _check(_ENTRY.statement + "\n  simp\n"))
    sorry_ax = _GOOD.replace("fun n => n * (n + 1) * 2 ^ (n - 2)", "sorryAx _ false")
    assert any("sorryAx" in r for r in _check(sorry_ax))


def test_eval_putnambench_answer_modes_from_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from malot.cli.app import main
    from malot.eval.store import ResultsStore

    toy = ["--solver", "tests.eval.toy_solver:toy_solver", "--model", "toy", "--no-progress", "--no-report"]
    for mode in ("given", "produced"):
        out = tmp_path / mode
        args = ["eval", "putnambench", "--answer-mode", mode, "--count", "3", "--samples", "1", "--out", str(out)]
        assert main([*args, *toy, "--json"]) == 0, capsys.readouterr().err
        capsys.readouterr()
        with ResultsStore.open(out) as store:
            assert store.run_info()["dataset"] == f"putnambench-{mode}"
            headers = [p.header for p in store.problems()]
        assert ("Answer to produce" in headers[1]) == (mode == "produced")
    assert main(["eval", "minif2f", "--answer-mode", "given", *toy, "--out", str(tmp_path / "x")]) == 2
    assert "--answer-mode applies to the dataset putnambench" in capsys.readouterr().err


@pytest.mark.lean
def test_produced_mode_gates_candidates_before_lean(tmp_path: Path, lean_exe: Path) -> None:
    import asyncio

    from malot.config import load_settings
    from malot.eval.prover_solver import prover_solver
    from malot.eval.runner import EvalRunner, LocalBackend
    from malot.eval.runs import create_run
    from malot.llm import ScriptedLLM

    settings = load_settings(
        overrides={
            "llm.model": "scripted",
            "prover.strategy": "whole-proof",
            "prover.template": "kimina-prover",
            "prover.samples": 2,
            "lean.lean_path": str(lean_exe),
            "lean.backend": "file",
            "retrieval.retriever": "none",
        }
    )
    data = load_dataset("putnambench:produced").select(names=["putnam_1962_a5"])
    store = create_run(data, settings, tmp_path / "run")
    left_as_sorry = _GOOD.replace("fun n => n * (n + 1) * 2 ^ (n - 2)", "sorry")
    llm = ScriptedLLM([f"```lean4\n{left_as_sorry}```", f"```lean4\n{_GOOD}```"])

    def factory(s: Any) -> Any:
        return prover_solver(s, llm=llm)

    asyncio.run(EvalRunner(store, settings, LocalBackend(factory, jobs=1)).run())
    by_sample = {a["sample"]: a for a in store.attempts()}
    gated, checked = by_sample[0], by_sample[1]
    assert gated["flags"]["lean_status"] == "gated" and not gated["flags"]["lean_called"]
    assert "putnam_1962_a5_solution is defined with sorry" in gated["error"]
    assert checked["flags"]["lean_called"]  # passed the gate; the fixture (no Mathlib) then rejects it in Lean
    assert not checked["verified"]
    store.close()


def test_prove_specs_load_putnambench_problems_and_the_api_gates_produced_ones() -> None:
    from malot.provers.api import _produced_gate
    from malot.provers.problem import load_problem

    given = load_problem("putnambench:putnam_1962_a5")
    produced = load_problem("putnambench-produced:putnam_1962_a5")
    assert given.statement == produced.statement and "2^(n - 2)" in given.header
    assert _produced_gate(given) is None
    gate = _produced_gate(produced)
    assert gate is not None and gate(_GOOD).reasons == [] and gate(_ENTRY.statement + " simp").reasons != []
    with pytest.raises(DatasetError):
        load_problem("putnambench:putnam_1962_z9")


def test_attributes_and_modifiers_start_a_declaration() -> None:
    helper = "\n@[simp] theorem helper : (1 : ℕ) = 1 := rfl\n"
    assert _check(_GOOD.replace("\n\ntheorem", helper + "\ntheorem", 1)) == []
    private_def = "private noncomputable def sneaky : ℕ → ℕ := fun n => n\n\n" + _GOOD
    assert any("def sneaky" in r for r in _check(private_def))
    noncomputable = _GOOD.replace("abbrev putnam_1962_a5_solution", "noncomputable abbrev putnam_1962_a5_solution")
    assert _check(noncomputable) == []


_SUITE = Path(__file__).resolve().parents[1] / "data" / "prelude_suite" / "prelude_suite.jsonl"
_TWO = "MyNat.succ (MyNat.succ MyNat.zero)"


@pytest.mark.lean
async def test_a_produced_solution_is_checked_by_the_final_check_over_the_solution(lean_exe: Path) -> None:
    # a produced-mode problem in the prelude fixture: the answer to produce is a MyNat; the gate moves the checked
    # solution into the statement's context and Lean's final check decides (before, the final check elaborated
    # the statement from the header alone, where the solution does not exist, so no produced answer could pass)
    from malot.eval.putnam import produced_gate
    from malot.lean.acceptance import TargetTheorem, verify_candidate
    from malot.lean.file_backend import LeanFileVerifier

    suite_header = json.loads(_SUITE.read_text(encoding="utf-8").splitlines()[0])["header"]
    header = suite_header + "-- Answer to produce: define `abbrev two_sol : MyNat := ...` before the theorem.\n\n"
    statement = f"theorem two_is_two : Eq' two_sol ({_TWO}) :="
    gate = produced_gate(header, statement, "two_is_two")
    assert gate is not None
    good = f"abbrev two_sol : MyNat := {_TWO}\n\n{statement} Eq'.refl\n"
    wrong_answer = good.replace(f"two_sol : MyNat := {_TWO}", "two_sol : MyNat := MyNat.zero")
    weakened = good.replace(f"Eq' two_sol ({_TWO})", "Eq' two_sol two_sol")
    async with LeanFileVerifier(lean_exe, workers=2) as lean:
        verdict = gate(good)
        assert verdict.reasons == [] and verdict.target is not None and "abbrev" not in (verdict.code or "abbrev")
        assert verdict.target.header.endswith(f"abbrev two_sol : MyNat := {_TWO}\n\n")
        result = await verify_candidate(lean, verdict.target, verdict.code)
        assert result.accepted, result.reasons()
        assert result.decided_by == "final-check" and result.final_check == "passed"
        # the answer is wrong: Lean rejects the proof over it
        wrong = gate(wrong_answer)
        assert wrong.reasons == []  # the text check cannot know the answer is wrong
        assert not (await verify_candidate(lean, wrong.target, wrong.code)).accepted
        # the statement was changed: the text check refuses it before Lean
        assert any("statement of two_is_two was changed" in r for r in gate(weakened).reasons)
        # checked against the problem's own header (the solution only in the candidate) it cannot pass
        plain = TargetTheorem(header=header, statement=statement, name="two_is_two")
        assert not (await verify_candidate(lean, plain, good)).accepted
