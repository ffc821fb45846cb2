"""The environment-level final check with real Lean 4.35 (prelude files): issue 13's exploits stay rejected, genuine
proofs stay accepted, and the verdict never depends on the candidate's scope or on malot's reading of its text."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from malot.lean.acceptance import AcceptanceRule, TargetTheorem, split_source, verify_candidate, verify_candidates
from malot.lean.file_backend import LeanFileVerifier
from malot.lean.final_check import FinalChecker, forbidden_mentions, reference_declaration, split_trusted_header
from malot.lean.sandbox import detect_sandbox, wrap_command

pytestmark = pytest.mark.lean

SUITE = Path(__file__).resolve().parents[1] / "data" / "prelude_suite" / "prelude_suite.jsonl"
RECORDS = [json.loads(line) for line in SUITE.read_text(encoding="utf-8").splitlines() if line.strip()]
HEADER = RECORDS[0]["header"]
# the allowed axioms, declared by the trusted header as Lean's Init declares them
CLASSICAL = (
    "axiom propext {a b : Prop} : Iff' a b → Eq' a b\n"
    "namespace Classical\naxiom choice {α : Sort u} : Exists' (fun (_ : α) => True') → α\nend Classical\n"
)
H_X = TargetTheorem(header=HEADER, statement="theorem h_x (p : Prop) : p :=", name="h_x")


@pytest.fixture
def verifier(lean_exe: Path) -> LeanFileVerifier:
    return LeanFileVerifier(lean_exe, workers=2)


@pytest.fixture
def checker(lean_exe: Path) -> FinalChecker:
    return FinalChecker(lean_exe, workers=2)


def _target(record: dict[str, str]) -> TargetTheorem:
    return TargetTheorem(header=record["header"], statement=record["statement"], name=record["name"])


async def test_every_genuine_suite_proof_is_accepted_by_the_final_check(verifier: LeanFileVerifier) -> None:
    items = [(_target(r), r["proof"]) for r in RECORDS] + [(_target(r), r["wrong_proof"]) for r in RECORDS]
    async with verifier:
        results = await verify_candidates(verifier, items)
    genuine, wrong = results[: len(RECORDS)], results[len(RECORDS) :]
    for record, result in zip(RECORDS, genuine, strict=True):
        assert result.accepted, (record["name"], result.reasons())
        assert result.decided_by == "final-check" and result.final_check == "passed"
        assert result.isolation == detect_sandbox()
    assert not any(r.accepted for r in wrong)


# Issue 13, class 1: the re-splice drops a line and re-opens a comment; the candidate then declares a weaker theorem
# (or a def / an inductive) with the target's name. Variants with doc comments, '-/prelude', a header copy.
RESPLICE_EXPLOITS = [
    "/-\n-/ import Foo\ntheorem h_x (p : Prop) : p := -/\ntheorem h_x (p : Prop) : Eq' p p := Eq'.refl",
    "/--\n-/ import Foo\ntheorem h_x (p : Prop) : p := -/\ntheorem h_x (p : Prop) : Eq' p p := Eq'.refl",
    "/-\n-/prelude\ntheorem h_x (p : Prop) : p := -/\ntheorem h_x (p : Prop) : Eq' p p := Eq'.refl",
    "```lean\n" + HEADER + "/-\n-/ import Foo\ntheorem h_x (p : Prop) : p := -/\n"
    "theorem h_x (p : Prop) : Eq' p p := Eq'.refl\n```",
    "/-\n-/ import Foo\ntheorem h_x (p : Prop) : p := -/\nnoncomputable def h_x (p : Prop) : Eq' p p := Eq'.refl",
    "/-\n-/ import Foo\ntheorem h_x (p : Prop) : p := -/\ninductive h_x (p : Prop) : Prop where\n  | mk : h_x p",
]


@pytest.mark.parametrize("answer", RESPLICE_EXPLOITS)
async def test_resplice_comment_exploits_are_rejected(verifier: LeanFileVerifier, answer: str) -> None:
    async with verifier:
        result = await verify_candidate(verifier, H_X, answer)
    assert not result.accepted, result.reasons()


async def _final(checker: FinalChecker, body: str, target: TargetTheorem = H_X, **kw: object) -> object:
    async with checker:
        return await checker.check(
            header=target.header,
            statement=target.statement,
            name=target.name,
            body=body,
            allowed_axioms=frozenset({"propext", "Classical.choice", "Quot.sound"}),
            **kw,  # type: ignore[arg-type]
        )


# The final check alone, with bodies that a screen bug would let through: it must reject each by itself.
HIDDEN_CHEATS = {
    "weaker theorem": ("theorem h_x (p : Prop) : Eq' p p := Eq'.refl", "type"),
    "def named like the target": ("noncomputable def h_x (p : Prop) : Prop := p", "type"),
    "axiom named like the target": ("axiom h_x (p : Prop) : p", "kind"),
    "own axiom": ("axiom cheat (p : Prop) : p\ntheorem h_x (p : Prop) : p := cheat p", "axioms"),
    "root axiom named like an allowed one": (
        "axiom propext (p : Prop) : p\ntheorem h_x (p : Prop) : p := propext p",
        "axioms",
    ),
    "private axiom named like an allowed one": (
        "private axiom propext (p : Prop) : p\ntheorem h_x (p : Prop) : p := propext p",
        "axioms",
    ),
    "namespaced look-alike": (
        "namespace Classical\naxiom choice (p : Prop) : p\nend Classical\n"
        "theorem h_x (p : Prop) : p := Classical.choice p",
        "axioms",
    ),
    "kernel check switched off": (
        "set_option debug.skipKernelTC true in\ntheorem h_x (p : Prop) : p := h_x p",
        "guard",
    ),
    "kernel option in a comment": ("-- debug.skipKernelTC\ntheorem h_x (p : Prop) : p := h_x p", "guard"),
    "target missing": ("theorem other : Eq' MyNat.zero MyNat.zero := Eq'.refl", "type"),
    "does not compile": ("theorem h_x (p : Prop) : p := nonsense", "compile"),
}


@pytest.mark.parametrize("case", sorted(HIDDEN_CHEATS))
async def test_the_final_check_alone_rejects_hidden_cheats(checker: FinalChecker, case: str) -> None:
    body, stage = HIDDEN_CHEATS[case]
    verdict = await _final(checker, body)
    assert not verdict.ok  # type: ignore[attr-defined]
    assert verdict.stage == stage, verdict.reason  # type: ignore[attr-defined]


async def test_open_scopes_never_change_a_verdict(verifier: LeanFileVerifier) -> None:
    """A genuine proof through Classical.choice under 'open Classical' prints 'choice' in its own scope (a false
    rejection before); the checker prints full names in its own scope. A namespace left open changes nothing."""
    header = HEADER + CLASSICAL
    target = TargetTheorem(
        header=header,
        statement="theorem pick (w : MyNat) : Exists' (fun (_ : MyNat) => True') :=",
        name="pick",
    )
    uses_choice = (
        "theorem pick (w : MyNat) : Exists' (fun (_ : MyNat) => True') :=\n"
        "  Exists'.intro (Classical.choice (Exists'.intro w True'.intro)) True'.intro\nopen Classical"
    )
    async with verifier:
        result = await verify_candidate(verifier, target, uses_choice)
    assert result.accepted, result.reasons()
    assert result.axioms == ["Classical.choice"]


async def test_universe_polymorphic_and_private_targets_in_whole_file_mode(verifier: LeanFileVerifier) -> None:
    source = (
        HEADER
        + "universe w\nvariable (β : Sort w)\n"
        + "/-- a doc comment: theorem fake : False' := sorry -/\n"
        + "private theorem refl_any.{x} (α : Sort x) (a : α) : Eq' a a := Eq'.refl\n"
        + "theorem uses_var (b : β) : Eq' b b := Eq'.refl\n"
    )
    async with verifier:
        for name in ("refl_any", "uses_var"):
            target, candidate = split_source(source, name)
            result = await verify_candidate(verifier, target, candidate)
            assert result.accepted, (name, result.reasons())
        # a leading option that turns the kernel off is not trusted header in whole-file mode
        unchecked = source.replace(HEADER, HEADER + "set_option debug.skipKernelTC true\n", 1)
        target, candidate = split_source(unchecked, "uses_var")
        result = await verify_candidate(verifier, target, candidate)
    assert not result.accepted and result.decided_by == "guard"


async def test_no_genuine_prelude_theorem_is_rejected_in_whole_file_mode(verifier: LeanFileVerifier) -> None:
    files = [r["header"] + "universe w\n" + r["statement"] + " " + r["proof"] + "\n" for r in RECORDS]
    async with verifier:
        results = await verify_candidates(verifier, [split_source(f) for f in files])
    rejected = [(r["name"], res.reasons()) for r, res in zip(RECORDS, results, strict=True) if not res.accepted]
    assert not rejected


async def test_a_lone_surrogate_rejects_its_candidate_only(verifier: LeanFileVerifier) -> None:
    record = RECORDS[0]
    items = [(_target(record), record["proof"]), (_target(record), '"\ud800" ' + record["proof"])]
    async with verifier:
        good, bad = await verify_candidates(verifier, items)
    assert good.accepted
    assert not bad.accepted and "surrogate" in " ".join(bad.violations)


WRAPPERS = [
    "{}\n-- a trailing comment",
    "-- leading comment\n{}",
    "/- block /- nested -/ comment -/\n{}",
    "/-- a doc comment -/\n{}",
    "```lean\n{}\n```",
    "Here is the proof:\n```lean\n{}\n```\nDone.",
]


@pytest.mark.parametrize("wrapper", WRAPPERS)
async def test_neutral_wrappers_do_not_change_verdicts(verifier: LeanFileVerifier, wrapper: str) -> None:
    record = next(r for r in RECORDS if r["name"] == "imp_trans")
    target = _target(record)
    genuine = record["statement"] + " " + record["proof"]
    cheats = [record["statement"] + " " + record["wrong_proof"], RESPLICE_EXPLOITS[0]]
    async with verifier:
        ok = await verify_candidate(verifier, target, wrapper.format(genuine))
        bad = [await verify_candidate(verifier, target if i else H_X, wrapper.format(c)) for i, c in enumerate(cheats)]
    assert ok.accepted, ok.reasons()
    assert not any(r.accepted for r in bad)


def test_split_source_reads_attribute_strings_as_lean_does() -> None:
    source = '@[simp, deprecated "use theorem other"] private theorem t.{v} (α : Sort v) : α → α := fun a => a\n'
    target, candidate = split_source("import Mathlib\n" + source)
    assert (target.name, target.statement) == ("t", "theorem t.{v} (α : Sort v) : α → α :=")
    assert target.header == "import Mathlib\n" and candidate == source


def test_raw_guards_for_headers_with_meta_programming() -> None:
    """Outside prelude mode a candidate could extend the syntax the checker parses: refused on the raw text."""
    assert forbidden_mentions("theorem t : 1 = 1 := by\n  -- nlinarith tactic, by notation\n  rfl", prelude=False) == [
        "notation"
    ]
    assert forbidden_mentions('/- "{" -/ macro_rules | `(type_of% $e) => `(True)', prelude=False) == ["macro_rules"]
    assert forbidden_mentions("@[simp, «tactic» foo] def x := 1", prelude=False) == ["@[tactic]"]
    assert forbidden_mentions("exact ProbabilityTheory.Kernel.comp_id", prelude=False) == []
    assert forbidden_mentions("set_option debug.«skipKernelTC» true", prelude=True) == ["skipKernelTC"]
    demos = Path(__file__).resolve().parents[2] / "malot" / "data" / "demos" / "minif2f_valid_solved.jsonl"
    for line in demos.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        texts = [v for v in record.values() if isinstance(v, str) and ":=" in v]
        assert texts and not any(forbidden_mentions(t, prelude=False) for t in texts), record.get("name")


def test_reference_declaration_keeps_universes_and_namespace() -> None:
    axiom, full = reference_declaration("theorem t.{u} (α : Sort u) : α → α := by", "t", "Foo")
    assert axiom == "axiom _root_.MalotReference.Foo.t.{u} (α : Sort u) : α → α\n"
    assert full == "Foo.t"
    parts = split_trusted_header(
        "import Mathlib\nset_option maxHeartbeats 400000\nset_option debug.skipKernelTC true\nopen Real\n"
        "namespace A\nvariable (x : Nat)\n"
    )
    assert not parts.prelude and parts.namespace == "A"
    assert parts.scope.splitlines() == [
        "set_option maxHeartbeats 400000",
        "open Real",
        "namespace A",
        "variable (x : Nat)",
    ]


@pytest.mark.skipif(shutil.which("bwrap") is None or detect_sandbox() != "bwrap", reason="bubblewrap not usable")
def test_bwrap_runs_a_toolchain_under_tmp_read_only_without_network(lean_exe: Path, tmp_path: Path) -> None:
    """The real bwrap path: Lean (which may live under /tmp) runs; writes outside scratch fail; no network."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    src = scratch / "A.lean"
    src.write_text("prelude\ninductive T : Prop where\n  | t : T\ntheorem x : T := T.t\n")
    version = subprocess.run(
        wrap_command([str(lean_exe), str(src)], "bwrap", writable=[scratch], cwd=scratch), capture_output=True
    )
    assert version.returncode == 0, version.stderr
    write = subprocess.run(
        wrap_command(["sh", "-c", f"touch {scratch}/ok && touch {tmp_path}/outside"], "bwrap", writable=[scratch]),
        capture_output=True,
        text=True,
    )
    assert (scratch / "ok").exists() and not (tmp_path / "outside").exists()
    assert write.returncode != 0 and "Read-only" in write.stderr
    net = subprocess.run(wrap_command(["cat", "/proc/net/dev"], "bwrap"), capture_output=True, text=True, check=True)
    assert {line.split(":")[0].strip() for line in net.stdout.splitlines()[2:]} == {"lo"}


async def test_require_final_check_rejects_without_a_local_lean(lean_exe: Path) -> None:
    record = RECORDS[0]
    async with LeanFileVerifier(lean_exe, final_check="off") as v:
        assert v.final_checker is None
        lax = await verify_candidate(v, _target(record), record["proof"])
        strict = await verify_candidate(v, _target(record), record["proof"], AcceptanceRule(require_final_check=True))
    assert lax.accepted and lax.final_check == "unavailable" and lax.decided_by == "fast-check"
    assert not strict.accepted and strict.final_check == "unavailable"
