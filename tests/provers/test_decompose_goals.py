"""Goals printed by Lean turned into standalone lemmas (no Lean needed)."""

from __future__ import annotations

from malot.provers.decompose.skeleton import assemble, find_holes, lemma_from_goal, normalise_statement, parse_goal


def test_multi_line_hypotheses_let_values_and_case_tags() -> None:
    goal = "case h\nx y : ℕ\nh : x +\n    y = 3\nz : ℕ := x + 1\n⊢ z ≤\n  4"
    hyps, target = parse_goal(goal)
    assert hyps == [(["x", "y"], "ℕ"), (["h"], "x + y = 3"), (["z"], "ℕ")]
    assert target == "z ≤ 4"


def test_inaccessible_names_and_instances() -> None:
    goal = "α : Type u_1\ninst✝ : Fintype α\nx✝ : α\nh : x✝ = x✝\n⊢ Fintype.card α > 0"
    spec = lemma_from_goal(goal, "l", tactic=True)
    assert (
        spec.statement
        == "theorem l (α : Type u_1) [Fintype α] (x_anon2 : α) (h : x_anon2 = x_anon2) : Fintype.card α > 0 := by"
    )
    assert spec.call() == "l α _ h"
    assert spec.negated("¬ ({goal})", "l_false").endswith(": ¬ (Fintype.card α > 0) := by")


def test_holes_assembly_and_cache_keys() -> None:
    code = "theorem t (p : Prop) (hp : p) : p := by\n  have h : p := by sorry\n  exact (sorry : p)"
    holes = find_holes(code)
    assert [(h.line, h.term) for h in holes] == [(2, False), (3, True)]
    out = assemble(code, holes, ["a p hp", "b p hp"], ["theorem a : True := trivial"], statement_start=0)
    assert out.startswith("theorem a : True := trivial\n\ntheorem t")
    assert "have h : p := by exact a p hp" in out and "exact ((b p hp) : p)" in out
    assert normalise_statement("theorem foo  (x : ℕ) :\n x = x :=") == normalise_statement(
        "lemma bar (x : ℕ) : x = x :="
    )
