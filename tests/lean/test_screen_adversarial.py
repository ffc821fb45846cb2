"""Adversarial variants for the source screen: genuine and cheating answers wrapped in every comment, string and
name form the lexer knows; the issue-13 lexer cases; linear time; genuine proofs of the repository pass."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from malot.lean.acceptance import ScreenResult, TargetTheorem, screen
from malot.lean.screen import screen_tokens

REPO = Path(__file__).resolve().parents[2]
HEADER = "import Mathlib\n\nset_option maxHeartbeats 400000\n\nopen BigOperators Real Nat Topology Rat\n\n"
STMT = "theorem t1 (a b : ℕ) (h : a = b) : b = a"
TARGET = TargetTheorem(header=HEADER, statement=STMT + " := by")
GENUINE = "exact h.symm"


def _demos() -> list[dict[str, Any]]:
    path = REPO / "malot" / "data" / "demos" / "minif2f_valid_solved.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def _prelude_suite() -> list[dict[str, Any]]:
    path = REPO / "tests" / "data" / "prelude_suite" / "prelude_suite.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


# --- payloads and wrappers ----------------------------------------------------------------------------------

#: Text a cheating model would like Lean to run; inside a neutral wrapper it must stay inert for the screen too.
PAYLOADS = [
    "sorry",
    "#exit",
    "#eval IO.println 1",
    "axiom cheat : False",
    "@[implemented_by f] def g := 1",
    "@[«command_elab» foo] def g := 1",
    "run_cmd pure ()",
    'macro "x" : tactic => `(tactic| sorry)',
    'local notation "ok" => sorry',
    "open Lean in #eval Lean.Kernel.Environment.addDecl",
    'quote " and escaped \\" and \\\\',
    "apostrophe ' and h' and '\\''",
    "braces { } and «guillemets»",
    'raw r#" and "# ends',
    "dashes -- and --- and -",
]


def _esc(text: str, interpolated: bool = False) -> str:
    out = text.replace("\\", "\\\\").replace('"', '\\"')
    return out.replace("{", "\\{") if interpolated else out


def _no_comment_marks(text: str) -> str:
    return text.replace("/-", "/ -").replace("-/", "- /")


#: Neutral wrappers: each turns a payload into Lean text that adds no code (comments, literals, escaped names).
WRAPPERS: dict[str, Callable[[str], str]] = {
    "line comment": lambda p: "-- " + p,
    "block comment": lambda p: "/- " + _no_comment_marks(p) + " -/",
    "nested block comment": lambda p: "/- a /- " + _no_comment_marks(p) + " -/ b /- c -/ -/",
    "skipped character": lambda p: "/-/ " + _no_comment_marks(p) + " -/",
    "doc comment": lambda p: "/-- " + _no_comment_marks(p) + " -/",
    "module doc": lambda p: "/-! " + _no_comment_marks(p) + " -/",
    "string": lambda p: '#check "' + _esc(p) + '"',
    "string gap": lambda p: '#check "a\\\n   ' + _esc(p) + '"',
    "raw string": lambda p: '#check r##"' + p.replace('"##', "") + '"##',
    "char literals": lambda p: "#check ('\"', '\\'', '{', \"" + _esc(p) + '")',
    "panic string": lambda p: '#check (panic!"{ /- " : Nat) -- ' + p,
    "escaped name": lambda p: '#check «/- " -- {»',
}


def _variants(answer: str) -> Iterator[tuple[str, str, str]]:
    for wname, wrap in WRAPPERS.items():
        for payload in PAYLOADS:
            yield wname, payload, answer + "\n" + wrap(payload)


def _verdict(result: ScreenResult) -> tuple[bool, frozenset[str]]:
    return result.ok, frozenset(result.rules)


def test_wrapped_payloads_do_not_change_a_genuine_verdict() -> None:
    base = screen(TARGET, GENUINE)
    assert base.ok
    changed = [(w, p) for w, p, cand in _variants(GENUINE) if not screen(TARGET, cand).ok]
    assert changed == []


CHEATS = {
    "sorry": ("sorry", "sorry"),
    "#exit": ("omega\n#exit", "#exit"),
    "axiom": (f"axiom cheat : ∀ a b : ℕ, a = b → b = a\n{STMT} := cheat a b h", "axiom"),
    "implemented_by": (f"@[implemented_by id] def f : ℕ → ℕ := id\n{STMT} := by\n  omega", "implemented_by"),
    "run_cmd": ("omega\nrun_cmd pure ()", "run_cmd"),
    "local notation": (f'local notation "ok" => sorry\n{STMT} := ok', "notation"),
    "escaped elab attribute": ("omega\n@[«command_elab» Lean.Parser.Command.check] def e := 1", "elab"),
    "kernel api": ("omega\ndef f := Lean.Kernel.Environment.addDecl", "kernel API"),
}


@pytest.mark.parametrize("case", sorted(CHEATS))
def test_wrapped_payloads_do_not_change_a_cheating_verdict(case: str) -> None:
    answer, rule = CHEATS[case]
    ok, rules = _verdict(screen(TARGET, answer))
    assert not ok and rule in rules
    changed = []
    for wname, payload, cand in _variants(answer):
        result = screen(TARGET, cand)
        if result.ok or rule not in result.rules:
            changed.append((wname, payload, result.reasons))
    assert changed == []


#: Text before the cheat that a lexer disagreeing with Lean would read as the start of a comment or string.
DECOYS = [
    '#check (panic!"{ /- " : Nat)',  # plain string for Lean (panic! takes a term)
    '#check xs!"{ /- "',  # an identifier ending in "!" is not s!
    '#check (r#"a"# , "/-")',
    '#check (\'"\', "/-")',
    "#check «a /- b»",
    '#check "\\\\" -- "',
    "/-/ -/",  # the character after "/-" is skipped: this comment is closed
    '/-- "-/',
    '#check s!"{"/-"}"',  # a string inside the interpolation's code part
    '#check s!"\\{ /- "',  # an escaped brace is text
]


@pytest.mark.parametrize("decoy", DECOYS)
def test_decoys_do_not_hide_a_cheat(decoy: str) -> None:
    assert screen(TARGET, GENUINE + "\n" + decoy).ok
    for case, (answer, rule) in CHEATS.items():
        if answer.startswith(STMT) or "\n" + STMT in answer:
            continue  # cheats that restate the theorem are placed before the decoy by splicing; skip
        result = screen(TARGET, GENUINE + "\n" + decoy + "\n" + answer.split("\n", 1)[-1])
        assert not result.ok and rule in result.rules, (case, decoy, result.reasons)


INTERPOLATIONS = [
    's!"{@@}"',
    's! "text {@@} text"',
    's! /- c -/ "{@@}"',
    'f!"{@@}"',
    'm!"{@@}"',
    'println! "{@@}"',
    'throwError "{@@}"',
    'throwErrorAt ref "{@@}"',
    'trace[Meta.debug] "{@@}"',
    's!"{s!"{@@}"}"',
]


@pytest.mark.parametrize("form", INTERPOLATIONS)
def test_code_hidden_in_interpolation_is_seen(form: str) -> None:
    for expr, rule in [
        ("(sorry : Nat)", "sorry"),
        ("Lean.ofReduceBool", "Lean.ofReduceBool"),
        ("«sorryAx»", "sorryAx"),
    ]:
        result = screen(TARGET, GENUINE + "\n#check " + form.replace("@@", expr))
        assert not result.ok and rule in result.rules, (form, result.reasons)


def test_commands_in_interpolated_text_are_rejected() -> None:
    """A parse error inside ``{...}`` makes Lean read the rest of the string as code (checked with dbg_trace in
    test_lexer's real-Lean cases), so command words in interpolated text are rejected."""
    result = screen(TARGET, GENUINE + '\n#check s!"{)} #exit"')
    assert not result.ok and "hidden command" in result.rules
    assert screen(TARGET, GENUINE + '\n#check s!"{1} plain text about a partial sum, prefix and notation"').ok
    for word in ("run_cmd", "macro", "#eval"):
        result = screen(TARGET, GENUINE + f'\n#check s!"{{1}} {word} x"')
        assert "hidden command" in result.rules, word


# --- issue 13, class 2 and 6 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("candidate", "rule"),
    [
        ('omega\n#check (panic!"{ /- " : Nat)\n#eval 1', "#eval"),
        ('omega\n#check (dbg_trace "{(sorry : Nat)}"; 1)', "sorry"),
        ('omega\n#check (dbg_trace "x"; 1)', "dbg_trace"),
        ('omega\n#check s! "{(sorry : Nat)}"', "sorry"),
        ('omega\n#check throwError "{(sorry : Nat)}"', "sorry"),
        (
            "omega\n@[«command_elab» Lean.Parser.Command.check] def e := 1",
            "elab",
        ),
        ("omega\nattribute [«tactic» Lean.Parser.Tactic.omega] myOmega", "elab"),
        ("omega\n@[«implemented_by» id] def f : ℕ → ℕ := id", "implemented_by"),
        ("omega\ndef f := Lean.«Kernel».Environment.addDeclCore", "kernel API"),
        ("omega\ndef f := Lean.Environment.replay", "kernel API"),
        ("omega\nopen Lean in\ndef f := Environment.addDecl", "kernel API"),
        ('exact "\\q\n#exit"', "lexer"),
        ('exact "\\u{41}"', "lexer"),
        ("exact h.symm\n/- unterminated", "lexer"),
        ("exact h.symm\t", "lexer"),
    ],
)
def test_issue_lexer_cases_are_rejected(candidate: str, rule: str) -> None:
    result = screen(TARGET, candidate)
    assert not result.ok and rule in result.rules, result.reasons


@pytest.mark.parametrize(
    "candidate",
    [
        "have k : ProbabilityTheory.Kernel.id = ProbabilityTheory.Kernel.id := rfl\n  exact h.symm",
        "have := @ProbabilityTheory.Kernel.comp\n  exact h.symm",
        "have := @Kernel.deterministic\n  exact h.symm",
        "exact «h».symm",
        'exact h.symm\n#check "sorry /- #exit"',
    ],
)
def test_genuine_names_pass(candidate: str) -> None:
    assert screen(TARGET, candidate).ok, screen(TARGET, candidate).reasons


def test_a_comment_running_over_the_trusted_statement_is_rejected() -> None:
    code = HEADER + "/- helper\n" + STMT + " := by\n  -/ omega"
    pre = (len(HEADER), len(HEADER) + len("/- helper\n"))
    stmt_end = pre[1] + len(STMT) + len(" :=")
    violations = screen_tokens(code, [pre, (stmt_end, len(code))], pre)
    assert "unterminated" in {v.rule for v in violations}


@pytest.mark.parametrize(
    ("preamble", "passes"),
    [
        ("private", False),
        ("@[simp]", False),
        ("@[reducible] /- c -/", False),
        ("noncomputable", False),
        ("def l : List ℕ := [1]", True),
        ("@[simp] theorem helper : True := trivial", True),
    ],
)
def test_a_preamble_must_not_end_in_a_modifier_of_the_statement(preamble: str, passes: bool) -> None:
    code = HEADER + preamble + "\n" + STMT + " := by\n  omega"
    pre = (len(HEADER), len(HEADER) + len(preamble) + 1)
    stmt_end = pre[1] + len(STMT) + len(" :=")
    rules = {v.rule for v in screen_tokens(code, [pre, (stmt_end, len(code))], pre)}
    assert ("modifies statement" not in rules) == passes, rules


PRELUDE_TARGET = TargetTheorem(
    header="prelude\ninductive Eq' {α : Sort u} (a : α) : α → Prop where\n  | refl : Eq' a a\n",
    statement="theorem h_x (p : Prop) : p :=",
)
WEAKER = "theorem h_x (p : Prop) : Eq' p p := Eq'.refl"
#: Issue 13, class 1: the preamble cleaner drops a line that closes a comment or string, so the opener left in
#: the preamble swallows the re-spliced statement, and the proof declares a weaker theorem of the same name.
RESPLICE_ATTACKS = [
    "/-\n-/ import Foo\ntheorem h_x (p : Prop) : p := -/\n" + WEAKER,
    "/--\n-/ import Foo\ntheorem h_x (p : Prop) : p := -/\n" + WEAKER,
    "/-\n-/prelude\ntheorem h_x (p : Prop) : p := -/\n" + WEAKER,
    'def s := r#"\n"# import Foo\ntheorem h_x (p : Prop) : p := "#\n' + WEAKER,
]


@pytest.mark.parametrize("attack", RESPLICE_ATTACKS)
def test_a_literal_swallowing_the_statement_is_rejected(attack: str) -> None:
    result = screen(PRELUDE_TARGET, attack)
    assert not result.ok and "unterminated" in result.rules, result.reasons


@pytest.mark.lean
async def test_swallowed_statements_are_swallowed_for_real_lean(lean_exe: Path) -> None:
    """Where the screen says a comment or string runs over the statement, Lean indeed never sees the trusted
    statement: the file compiles with only the weaker theorem (so the screen's objection is real)."""
    from malot.lean.base import Snippet
    from malot.lean.file_backend import LeanFileVerifier

    codes = [screen(PRELUDE_TARGET, attack).code for attack in RESPLICE_ATTACKS]
    async with LeanFileVerifier(lean_exe, workers=2) as lean:
        results = await lean.check([Snippet(id=str(k), code=code + "\n#check h_x\n") for k, code in enumerate(codes)])
    for code, result in zip(codes, results, strict=True):
        checked = [m.data for m in result.messages if m.data.startswith("h_x")]
        assert checked and "Eq' p p" in checked[0], (code, [m.short() for m in result.messages])


# --- all genuine proofs of the repository pass ---------------------------------------------------------------


def test_every_minif2f_demonstration_passes_in_wrappers() -> None:
    records = _demos()
    assert len(records) >= 60
    wrappers = list(WRAPPERS.values())
    rejected = []
    for k, rec in enumerate(records):
        target = TargetTheorem(header=HEADER, statement=rec["formal_statement"], name=rec["name"])
        wrapped = rec["formal_proof"] + "\n" + wrappers[k % len(wrappers)](PAYLOADS[k % len(PAYLOADS)])
        for cand in (rec["formal_proof"], wrapped):
            result = screen(target, cand)
            if not result.ok:
                rejected.append((rec["name"], result.reasons))
    assert rejected == []


def test_every_prelude_suite_proof_passes() -> None:
    rejected = []
    for rec in _prelude_suite():
        target = TargetTheorem(header=rec["header"], statement=rec["statement"], name=rec["name"])
        for cand in (rec["proof"], rec["proof"] + "\n-- sorry #exit", rec["proof"] + "\n/- /- axiom -/ -/"):
            result = screen(target, cand)
            if not result.ok:
                rejected.append((rec["name"], result.reasons))
    assert rejected == []


@pytest.mark.lean
async def test_neutral_wrappers_are_neutral_for_real_lean(lean_exe: Path) -> None:
    """Genuine prelude proofs in comment wrappers: Lean still accepts them, and so does the screen."""
    from malot.lean.base import Snippet
    from malot.lean.file_backend import LeanFileVerifier

    # (a doc comment must precede a declaration, so it is no neutral suffix for Lean)
    neutral = ("line comment", "block comment", "nested block comment", "skipped character", "module doc")
    comment_wrappers = [WRAPPERS[name] for name in neutral]
    records = _prelude_suite()[:12]
    snippets, screened = [], []
    for k, rec in enumerate(records):
        target = TargetTheorem(header=rec["header"], statement=rec["statement"], name=rec["name"])
        wrap = comment_wrappers[k % len(comment_wrappers)]
        result = screen(target, rec["proof"] + "\n" + wrap(PAYLOADS[k % len(PAYLOADS)]))
        screened.append(result.ok)
        snippets.append(Snippet(id=rec["name"], code=result.code))
    async with LeanFileVerifier(lean_exe, workers=2) as lean:
        results = await lean.check(snippets)
    lean_errors = [
        (s.id, [m.short() for m in r.messages if m.severity == "error"]) for s, r in zip(snippets, results, strict=True)
    ]
    assert all(screened)
    assert [e for e in lean_errors if e[1]] == []


# --- linear time (operation counts, not timings) --------------------------------------------------------------


def _count_lines(fn: Callable[[], object], watched: str) -> int:
    """How many Python lines of the module file ``watched`` run during ``fn()`` (a deterministic work measure)."""
    count = 0

    def tracer(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal count
        if not frame.f_code.co_filename.endswith(watched):
            return None
        if event == "line":
            count += 1
        return tracer

    old = sys.gettrace()
    sys.settrace(tracer)
    try:
        fn()
    finally:
        sys.settrace(old)
    return count


@pytest.mark.parametrize(
    "unit",
    ["  open Nat in\n", "  open Nat Real in\n  sorry\n", '  #check s!"{1}"\n', "  -- c\n  /- d -/\n", "a.b.c "],
)
@pytest.mark.parametrize("module", ["malot/lean/lexer.py", "malot/lean/screen.py"])
def test_screen_work_grows_linearly(unit: str, module: str) -> None:
    def work(reps: int) -> int:
        pre = unit * reps
        code = HEADER + pre + STMT + " := by\n  omega\n" + unit * reps
        stmt_start = len(HEADER) + len(pre)
        stmt_end = stmt_start + len(STMT) + len(" :=")
        regions = [(len(HEADER), stmt_start), (stmt_end, len(code))]
        return _count_lines(lambda: screen_tokens(code, regions, regions[0]), module)

    small, large = work(100), work(400)
    # linear work grows about 4x; the screen before issue 13 grew ~15x here (quadratic in "open ... in" lines)
    assert large <= 4.6 * small, (small, large)
