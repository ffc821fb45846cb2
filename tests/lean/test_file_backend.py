"""The file backend end to end with the real Lean 4.35 fixture (prelude files), and the acceptance rule on top."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from malot.config import LeanSettings
from malot.errors import BackendUnavailableError
from malot.lean import AcceptanceRule, Snippet, TargetTheorem, load_verifier, verify_candidate
from malot.lean.file_backend import LeanFileVerifier

pytestmark = pytest.mark.lean

PRELUDE = """prelude
inductive MyNat where
  | zero : MyNat
  | succ : MyNat → MyNat
inductive Eq' {α : Sort u} (a : α) : α → Prop where
  | refl : Eq' a a
noncomputable def add (m n : MyNat) : MyNat := MyNat.rec m (fun _ ih => MyNat.succ ih) n
noncomputable def mul (m n : MyNat) : MyNat := MyNat.rec MyNat.zero (fun _ ih => add ih m) n
noncomputable def two : MyNat := MyNat.succ (MyNat.succ MyNat.zero)
noncomputable def f (n : MyNat) : MyNat := MyNat.rec two (fun _ ih => mul ih ih) n
"""
TARGET = TargetTheorem(header=PRELUDE, statement="theorem foo : Eq' (add two two) (mul two two) :=")
FIVE = "(MyNat.succ (MyNat.succ (MyNat.succ (MyNat.succ (MyNat.succ MyNat.zero)))))"
# Refuting f 5 = succ (f 5) makes Lean evaluate 2^32 in unary: it runs for many seconds.
SLOW = PRELUDE + "set_option maxHeartbeats 0\nset_option maxRecDepth 100000000\n"
SLOW += f"theorem slow : Eq' (f {FIVE}) (MyNat.succ (f {FIVE})) := Eq'.refl\n"


@pytest.fixture
def verifier(lean_exe: Path) -> LeanFileVerifier:
    return LeanFileVerifier(lean_exe, workers=2, timeout=30)


async def test_accepted_proof_has_every_flag(verifier: LeanFileVerifier) -> None:
    async with verifier:
        result = await verify_candidate(verifier, TARGET, "Eq'.refl")
    assert result.accepted, result.reasons()
    assert result.status == "ok" and result.axioms == []
    assert all(v is not False for k, v in result.flags().items() if k != "sandboxed")  # no bwrap here
    assert result.whole_command_checked and result.target_declared and result.no_exit


async def test_full_snippet_with_weakened_statement_is_respliced(verifier: LeanFileVerifier) -> None:
    cheat = "```lean\ntheorem foo : Eq' two two := Eq'.refl\n```"
    async with verifier:
        result = await verify_candidate(verifier, TARGET, cheat)
    assert result.accepted  # Eq'.refl also proves the ORIGINAL statement (both sides reduce to 4)
    assert result.code is not None and "theorem foo : Eq' (add two two) (mul two two) := Eq'.refl" in result.code
    wrong = TargetTheorem(header=PRELUDE, statement="theorem foo : Eq' (add two two) two :=")
    async with verifier:
        rejected = await verify_candidate(verifier, wrong, cheat)
    assert not rejected.accepted and rejected.no_errors is False
    assert any("Type mismatch" in m.data for m in rejected.errors)


@pytest.mark.parametrize(
    ("proof", "expected"),
    [
        ("MyNat.zero", "Type mismatch"),
        ("unknownLemma", "Unknown identifier"),
        ("(Eq'.refl", "expected"),  # parse error
    ],
)
async def test_lean_errors_reject(verifier: LeanFileVerifier, proof: str, expected: str) -> None:
    async with verifier:
        result = await verify_candidate(verifier, TARGET, proof)
    assert not result.accepted and result.status == "ok"
    assert result.no_errors is False
    assert any(expected in m.data for m in result.errors), [m.short() for m in result.messages]
    assert all(m.pos is not None and m.pos.line >= 11 for m in result.errors)


async def test_heartbeat_timeout_is_an_error(verifier: LeanFileVerifier) -> None:
    target = TargetTheorem(header=PRELUDE + "set_option maxHeartbeats 1\n", statement=TARGET.statement)
    async with verifier:
        result = await verify_candidate(verifier, target, "Eq'.refl")
    assert not result.accepted
    assert any("maxHeartbeats" in m.data for m in result.errors)


async def test_exit_is_caught_by_screen_and_by_lean(verifier: LeanFileVerifier) -> None:
    rule = AcceptanceRule(check_screened=True)  # send it to Lean anyway: Lean stops at #exit
    async with verifier:
        screened = await verify_candidate(verifier, TARGET, "Eq'.refl\n#exit")
        checked = await verify_candidate(verifier, TARGET, "Eq'.refl\n#exit", rule)
    assert screened.status == "screened" and not screened.accepted
    assert any(v.startswith("#exit") for v in screened.violations)
    assert checked.status == "ok" and not checked.accepted
    assert checked.no_exit is False and checked.target_declared is False and checked.axioms is None


async def test_injected_axiom_is_found_by_own_print_axioms(verifier: LeanFileVerifier) -> None:
    candidate = "axiom cheat : Eq' (add two two) (mul two two)\ntheorem foo : Eq' (add two two) (mul two two) := cheat"
    # a fake "#print axioms" line of the model's own is ignored: only the checker's message, by position, counts
    candidate += "\n#print axioms add"
    async with verifier:
        result = await verify_candidate(verifier, TARGET, candidate, AcceptanceRule(check_screened=True))
        allowed = await verify_candidate(
            verifier, TARGET, candidate, AcceptanceRule(check_screened=True, allowed_axioms=frozenset({"cheat"}))
        )
    assert result.axioms == ["cheat"] and result.disallowed_axioms == ["cheat"]
    assert result.axioms_allowed is False and result.screen_ok is False and not result.accepted
    assert allowed.axioms_allowed is True and not allowed.accepted  # still rejected: the screen bans 'axiom'


async def test_raw_check_reports_messages_in_order(verifier: LeanFileVerifier) -> None:
    snippets = [
        Snippet(id="good", code=PRELUDE + "theorem a : Eq' two two := Eq'.refl\n"),
        Snippet(id="bad", code=PRELUDE + "theorem b : Eq' two MyNat.zero := Eq'.refl\n"),
        Snippet(id="parse", code=PRELUDE + "theorem c : := \n"),
    ]
    async with verifier:
        results = await verifier.check(snippets)
    assert [r.id for r in results] == ["good", "bad", "parse"]
    assert results[0].errors == [] and results[0].status == "ok"
    assert results[1].errors and results[1].errors[0].pos is not None and results[1].errors[0].pos.line == 11
    assert results[2].errors
    assert results[0].accepted is False  # a raw check never accepts: only the acceptance rule does
    assert all(r.cpu_s is not None and 0 < r.cpu_s <= r.time_s + 0.05 for r in results)  # Lean's own CPU time


async def test_wall_timeout_kills_lean(lean_exe: Path) -> None:
    async with LeanFileVerifier(lean_exe, workers=1) as v:
        [result] = await v.check([Snippet(id="slow", code=SLOW)], timeout=1.0)
    assert result.status == "timeout" and result.time_s < 10


async def test_memory_cap_crashes_cleanly(lean_exe: Path) -> None:
    async with LeanFileVerifier(lean_exe, workers=1, memory_limit_mb=200) as v:
        [result] = await v.check([Snippet(id="m", code=PRELUDE)], timeout=30)
    assert result.status == "crash" and result.error is not None


async def test_cancelling_a_check_kills_the_process_group(lean_exe: Path) -> None:
    async with LeanFileVerifier(lean_exe, workers=1, sandbox="off") as v:
        task = asyncio.create_task(v.check([Snippet(id="slow", code=SLOW)], timeout=60))
        for _ in range(100):
            await asyncio.sleep(0.05)
            if v._running:
                break
        [proc] = list(v._running)
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert proc.returncode is not None
        with pytest.raises(ProcessLookupError):  # Lean and its shell are gone, reaped (no zombie left)
            os.killpg(proc.pid, 0)


def test_load_verifier_choices(lean_exe: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    v = load_verifier(LeanSettings(lean_path=lean_exe))
    assert isinstance(v, LeanFileVerifier)
    monkeypatch.delenv("MALOT_LEAN", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(BackendUnavailableError):
        load_verifier(LeanSettings())
    from malot.lean.kimina import KiminaVerifier

    assert isinstance(load_verifier(LeanSettings(kimina_url="http://127.0.0.1:9")), KiminaVerifier)


async def test_verify_candidates_batches_in_order(verifier: LeanFileVerifier) -> None:
    from malot.lean import verify_candidates

    items = [(TARGET, "Eq'.refl"), (TARGET, "sorry"), (TARGET, "MyNat.zero"), (TARGET, "```lean\nEq'.refl\n```")]
    async with verifier:
        results = await verify_candidates(verifier, items, ids=["a", "b", "c", "d"])
    assert [r.id for r in results] == ["a", "b", "c", "d"]
    assert [r.accepted for r in results] == [True, False, False, True]
    assert results[1].status == "screened" and results[2].no_errors is False


async def test_lean4checker_recheck_plumbing(lean_exe: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """lean4checker is not installed here: a stand-in script on PATH (a double for that binary) checks that malot
    compiled the accepted proof (the final check's candidate module) with real Lean and put it on LEAN_PATH,
    then answers."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "lean4checker"
    script.write_text(
        '#!/bin/sh\ncase "$1" in MalotCandidate_*) ;; *) exit 3;; esac\n'
        'for d in $(echo "$LEAN_PATH" | tr : " "); do [ -s "$d/$1.olean" ] && exit "$(cat "$VERDICT")"; done\n'
        "exit 4\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    verdict = tmp_path / "verdict"
    monkeypatch.setenv("VERDICT", str(verdict))
    rule = AcceptanceRule(lean4checker=True)
    async with LeanFileVerifier(lean_exe, workers=1) as v:
        verdict.write_text("0")
        ok = await verify_candidate(v, TARGET, "Eq'.refl", rule)
        verdict.write_text("1")
        bad = await verify_candidate(v, TARGET, "Eq'.refl", rule)
    assert ok.accepted and ok.lean4checker_ok is True, ok.violations
    assert not bad.accepted and bad.lean4checker_ok is False


async def test_print_axioms_redirected_into_a_namespace_is_not_trusted(verifier: LeanFileVerifier) -> None:
    """A tail that leaves 'namespace X' open makes the checker's '#print axioms foo' resolve to X.foo: the
    message names another constant, so the target does not count as checked (besides the screen's ban)."""
    tail = "Eq'.refl\n\nnamespace X\ntheorem foo : Eq' two two := Eq'.refl"
    async with verifier:
        result = await verify_candidate(verifier, TARGET, tail, AcceptanceRule(check_screened=True))
    assert any("'X.foo' does not depend on any axioms" in m.data for m in result.messages)
    assert result.target_declared is False and result.axioms is None and not result.accepted
