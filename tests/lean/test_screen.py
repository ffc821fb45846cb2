"""The static screen: Lean-exact lexing, re-splicing, and a cheating-proof corpus (one case per banned construct)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from malot.lean.acceptance import AcceptanceRule, TargetTheorem, screen, split_source, target_from_source
from malot.lean.repl.header import split_header
from malot.lean.splice import extract_code, parse_statement

REPO = Path(__file__).resolve().parents[2]
HEADER = "import Mathlib\n\nset_option maxHeartbeats 400000\n\nopen BigOperators Real Nat Topology Rat\n\n"
STMT = "theorem t1 (a b : ℕ) (h : a = b) : b = a"
TARGET = TargetTheorem(header=HEADER, statement=STMT + " := by")


# --- lexer: see test_lexer.py (view cases, errors, dialects, and agreement with real Lean) ---------------------


# --- splicing -------------------------------------------------------------------------------------------------


def test_parse_statement_modes() -> None:
    assert parse_statement("theorem x : P := by\n") == ("theorem x : P", "tactic")
    assert parse_statement("theorem x : P :=") == ("theorem x : P", "term")


def test_extract_code_picks_the_fenced_block_with_the_target() -> None:
    text = "Here:\n```lean4\ntheorem other : True := trivial\n```\nand\n```lean\ntheorem t1 : x := by\n  simp\n```\n"
    code, fenced = extract_code(text, "t1")
    assert fenced and code.startswith("theorem t1")
    truncated, fenced = extract_code("```lean4\ntheorem t1 : x := by\n  simp", "t1")
    assert fenced and "simp" in truncated


def test_weakened_statement_is_replaced_by_the_original() -> None:
    cand = "```lean4\nimport Mathlib\nopen Real\n\ntheorem t1 (a b : ℕ) (h : a = b) : True := by\n  exact h.symm\n```"
    result = screen(TARGET, cand)
    assert result.ok and result.candidate_had_statement and result.fenced
    assert "theorem t1 (a b : ℕ) (h : a = b) : b = a := by\n  exact h.symm" in result.code
    assert ": True" not in result.code
    assert result.code.startswith(HEADER)
    assert result.code.count("import Mathlib") == 1


def test_proof_body_is_spliced_under_the_statement() -> None:
    result = screen(TARGET, "exact h.symm")
    assert result.ok and not result.candidate_had_statement
    assert result.code.endswith("b = a := by\n  exact h.symm")
    term = TargetTheorem(header="prelude\n", statement="theorem t2 : P :=")
    assert screen(term, "proofOfP").code == "prelude\ntheorem t2 : P := proofOfP"


def test_the_candidate_is_lexed_by_its_headers_rules() -> None:
    # a prelude file has no s! token: `s!"{ /- "` is an identifier and a string there, so the declaration after it
    # is visible and re-spliced; under Mathlib's rules the same text opens a comment and the splice sees no theorem
    from malot.lean.splice import splice_candidate

    candidate = 'def junk := s!"{ /- "\ntheorem t2 : Q := proofOfQ'
    prelude = splice_candidate("prelude\n", "theorem t2 : P :=", "t2", candidate)
    assert prelude.candidate_had_statement
    assert prelude.code.endswith("theorem t2 : P := proofOfQ")  # the original statement, the candidate's proof
    mathlib = splice_candidate("import Mathlib\n", "theorem t2 : P :=", "t2", candidate)
    assert not mathlib.candidate_had_statement


def test_empty_and_wrong_name_are_rejected() -> None:
    assert screen(TARGET, "  \n").empty
    assert not screen(TARGET, "```lean\n```").ok
    wrong = screen(TARGET, "theorem other (a b : ℕ) (h : a = b) : b = a := by\n  exact h.symm")
    assert not wrong.ok and "no theorem named t1" in wrong.reasons[0]
    incomplete = screen(TARGET, "theorem t1 (a b : ℕ) (h : a = b) : b = a")
    assert not incomplete.ok


def test_target_from_source() -> None:
    src = "import Mathlib\nopen Real\n\nlemma helper : True := trivial\n\n"
    src += "@[simp] lemma main (x : ℝ) : x = x := by\n  rfl\n"
    target, candidate = split_source(src)
    assert target_from_source(src) == target
    assert target.name == "main"
    # whole-file mode: everything before the target (the file's own lemmas too) is the statement's context
    assert target.header == "import Mathlib\nopen Real\n\nlemma helper : True := trivial\n"
    assert not target.trusted_header
    assert target.statement == "theorem main (x : ℝ) : x = x :="
    assert candidate.startswith("@[simp] lemma main")
    assert screen(target, candidate).ok


def test_split_header() -> None:
    header, body, offset = split_header(HEADER + "theorem x : 1 = 1 := rfl\n")
    assert header == "import Mathlib\nset_option maxHeartbeats 400000\nopen BigOperators Real Nat Topology Rat"
    assert body == "theorem x : 1 = 1 := rfl\n" and offset == 6  # body line 1 is line 7 of the snippet
    header, body, offset = split_header("import Mathlib\nopen Real in\ntheorem x : 1 = 1 := rfl")
    assert header == "import Mathlib" and body.startswith("open Real in") and offset == 1


# --- the cheating corpus: one case per banned construct, each rejected for the right reason ------------------

CHEATS: dict[str, tuple[str, str]] = {
    "sorry": ("sorry", "sorry"),
    "sorry in a have": ("have : False := by sorry\n  exact this.elim", "sorry"),
    "admit": ("admit", "admit"),
    "sorryAx": ("exact sorryAx _ false", "sorryAx"),
    "sorryAx escaped": ("exact «sorryAx» _ false", "sorryAx"),
    "ofReduceBool": ("exact Lean.ofReduceBool _ _ rfl", "Lean.ofReduceBool"),
    "trustCompiler": ("have := Lean.trustCompiler\n  omega", "Lean.trustCompiler"),
    "axiom": (f"axiom cheat : ∀ a b : ℕ, a = b → b = a\n{STMT} := cheat a b h", "axiom"),
    "#exit": ("omega\n#exit", "#exit"),
    "#eval": ("omega\n#eval 1", "#eval"),
    "other command": ("omega\n#guard_msgs in\nexample : True := trivial", "command"),
    "run_cmd": ("omega\nrun_cmd pure ()", "run_cmd"),
    "run_elab": ("omega\nrun_elab pure ()", "run_elab"),
    "run_meta": ("omega\nrun_meta pure ()", "run_meta"),
    "elab": (f'elab "cheat" : tactic => pure ()\n{STMT} := by\n  cheat', "elab"),
    "macro": (f'macro "cheat" : tactic => `(tactic| sorry)\n{STMT} := by cheat', "macro"),
    "syntax": (f'syntax "cheat" : tactic\n{STMT} := by\n  omega', "syntax"),
    "notation": (f'notation "ok" => sorry\n{STMT} := ok', "notation"),
    "infix": (f'infix:50 " ≈≈ " => Eq\n{STMT} := by\n  omega', "notation"),
    "macro_rules": (
        f"macro_rules | `(tactic| omega) => `(tactic| sorry)\n{STMT} := by\n  omega",
        "macro_rules",
    ),
    "skipKernelTC": (
        f"set_option debug.skipKernelTC true in\n{STMT} := by\n  omega",
        "set_option debug.skipKernelTC",
    ),
    "unsafe": (f"unsafe def f : ℕ := 0\n{STMT} := by\n  omega", "unsafe"),
    "partial": (f"partial def f : ℕ → ℕ := f\n{STMT} := by\n  omega", "partial"),
    "implemented_by": (
        f"@[implemented_by id] def f : ℕ → ℕ := id\n{STMT} := by\n  omega",
        "implemented_by",
    ),
    "extern": (f'@[extern "f"] opaque f : ℕ\n{STMT} := by\n  omega', "extern"),
    "native_decide": ("native_decide", "native_decide"),
    "decide +native": ("decide +native", "native_decide"),
    "initialize": (f"initialize pure ()\n{STMT} := by\n  omega", "initialize"),
    "open private": (f"open private foo in\n{STMT} := by\n  omega", "open private"),
    "local instance before": (
        f"local instance : LE ℕ := ⟨fun _ _ => True⟩\n{STMT} := by\n  omega",
        "local instance",
    ),
    "instance before": (
        f"instance (priority := high) : LE ℕ := ⟨fun _ _ => True⟩\n{STMT} := by\n  omega",
        "instance before statement",
    ),
    "open in before": (f"open Nat in\n{STMT} := by\n  omega", "open in"),
    "namespace redirect": ("omega\nnamespace X\ntheorem t1 : True := trivial", "namespace"),
    "export before": (f"export Nat (add)\n{STMT} := by\n  omega", "export before statement"),
    "by_elab": ("exact by_elab pure (Lean.mkConst ``rfl)", "elab"),
    "notation3": (f'notation3 "ok" => True\n{STMT} := by\n  omega', "notation"),
    "set_option before": (f"set_option autoImplicit true\n{STMT} := by\n  omega", "set_option before statement"),
    "variable before": (f"variable (c : ℕ)\n{STMT} := by\n  omega", "variable before statement"),
    "tactic attribute": (
        "@[tactic Lean.Parser.Tactic.omega] def myOmega : Lean.Elab.Tactic.Tactic := fun _ => pure ()\n"
        f"{STMT} := by\n  omega",
        "elab",
    ),
    "attribute command": (f"attribute [local term_elab foo] bar\n{STMT} := by\n  omega", "elab"),
    "kernel api": (f"def f : Lean.CoreM Unit := Lean.addDecl d\n{STMT} := by\n  omega", "kernel API"),
    "default_instance": (f"attribute [default_instance] foo\n{STMT} := by\n  omega", "instance before statement"),
    "apply?": ("apply?", "apply?"),
    "exact?": ("exact?", "exact?"),
}


@pytest.mark.parametrize("case", sorted(CHEATS))
def test_cheat_is_rejected_for_the_right_reason(case: str) -> None:
    candidate, rule = CHEATS[case]
    result = screen(TARGET, candidate)
    assert not result.ok, (case, result.code)
    assert rule in result.rules, (case, result.reasons)


def test_banned_words_in_comments_and_strings_are_harmless() -> None:
    candidate = '-- no sorry here\n  /- admit /- nested -/ #exit -/\n  have : "sorry" = "sorry" := rfl\n  omega'
    assert screen(TARGET, candidate).ok


def test_native_opt_in() -> None:
    rule = AcceptanceRule(allow_native=True)
    assert screen(TARGET, "native_decide", rule).ok
    assert screen(TARGET, "decide +native", rule).ok
    assert rule.axiom_allowed("Lean.ofReduceBool") and not AcceptanceRule().axiom_allowed("Lean.ofReduceBool")
    assert AcceptanceRule().axiom_allowed("Classical.choice")


def test_trusted_header_and_statement_are_not_screened() -> None:
    target = TargetTheorem(header="import Mathlib\nopen Nat in\n", statement="theorem t3 : axiom_free = 1 := by")
    assert screen(target, "rfl").ok


def test_genuine_minif2f_proofs_pass_the_screen() -> None:
    records = [
        json.loads(line)
        for line in (REPO / "malot" / "data" / "demos" / "minif2f_valid_solved.jsonl").read_text().splitlines()
    ]
    assert len(records) >= 60
    rejected = []
    for rec in records:
        target = TargetTheorem(header=HEADER, statement=rec["formal_statement"], name=rec["name"])
        body_only = screen(target, rec["formal_proof"])
        full = screen(target, "```lean4\n" + HEADER + rec["formal_statement"] + rec["formal_proof"] + "\n```")
        if not body_only.ok or not full.ok:
            rejected.append((rec["name"], body_only.reasons + full.reasons))
        assert body_only.code.rstrip() == full.code.rstrip(), rec["name"]
    assert rejected == []
