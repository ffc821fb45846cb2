"""The skeleton stage through the REPL replay double: the REPL reports the goal at each ``sorry`` itself (no probe
check), and the lemmas are built from those goals. Only the skeleton check replays: the transcripts hold no
proofs of the extracted lemmas."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from malot.lean.acceptance import TargetTheorem
from malot.lean.repl.pool import ReplPool
from malot.provers.decompose.skeleton import check_skeleton, lemma_from_goal

DATA = Path(__file__).resolve().parents[1] / "data" / "repl_transcripts"
REPLAY = [sys.executable, "-m", "malot.testing.repl_replay", "--mode", "lookup", str(DATA)]

CASES = [
    (
        "theorem aa (x : Nat) (h1 : x  = 2) : x = 2 := by",
        "theorem aa (x : Nat) (h1 : x  = 2) : x = 2 := by sorry",
        "theorem aa_step1 (x : Nat) (h1 : x = 2) : x = 2 := by",
        "aa_step1 x h1",
    ),
    (
        "theorem complex_and (p q r : Prop) (h1 : p ∧ q) (h2 : q → r) : p ∧ r := by",
        "theorem complex_and (p q r : Prop) (h1 : p ∧ q) (h2 : q → r) : p ∧ r := by sorry",
        "theorem complex_and_step1 (p q r : Prop) (h1 : p ∧ q) (h2 : q → r) : p ∧ r := by",
        "complex_and_step1 p q r h1 h2",
    ),
]


@pytest.mark.parametrize(("statement", "skeleton", "lemma", "call"), CASES)
async def test_skeleton_goals_come_from_the_repl(statement: str, skeleton: str, lemma: str, call: str) -> None:
    async with ReplPool(REPLAY, size=1, timeout=20) as pool:
        check = await check_skeleton(pool, TargetTheorem(statement=statement), skeleton)
    assert check.ok, check.reasons
    assert check.lean_calls == 1  # the REPL's sorries carried the goals: no placeholder probe
    assert len(check.holes) == 1 and not check.holes[0].term
    name = lemma.split()[1]
    spec = lemma_from_goal(check.goals[0], name, tactic=True)
    assert spec.statement == lemma and spec.call() == call
