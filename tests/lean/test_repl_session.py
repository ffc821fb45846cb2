"""Proof sessions on the REPL pool, driven by the replay double with recorded tactic-mode transcripts."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from malot.lean.base import Snippet
from malot.lean.repl.pool import ReplPool
from malot.lean.session import ProofSession, ProofState, SessionLostError, TacticResult, normalize_goals

DATA = Path(__file__).resolve().parents[1] / "data" / "repl_transcripts"
REPLAY = [sys.executable, "-m", "malot.testing.repl_replay", "--mode", "lookup", str(DATA)]
BRANCHING = "theorem complex_and (p q r : Prop) (h1 : p ∧ q) (h2 : q → r) : p ∧ r := by sorry"
STEPS = ["apply And.intro", "exact h1.left", "apply h2", "exact h1.right"]


async def _walk(session: ProofSession, state: ProofState, tactics: list[str]) -> list[TacticResult]:
    out = []
    for tactic in tactics:
        result = await session.run_tactic(state, tactic)
        out.append(result)
        assert result.state is not None, result.error
        state = result.state
    return out


async def test_states_goals_and_a_provisional_verdict() -> None:
    async with ReplPool(REPLAY, size=1, timeout=10) as pool, pool.open_session() as session:
        assert isinstance(session, ProofSession)
        [root] = await session.start(BRANCHING)
        assert root.goals == ("p q r : Prop\nh1 : p ∧ q\nh2 : q → r\n⊢ p ∧ r",)
        results = await _walk(session, root, STEPS)
        assert [len(r.state.goals) for r in results if r.state] == [2, 1, 1, 0]
        assert [r.verdict for r in results] == ["open", "open", "open", "provisional"]
        assert results[-1].status == "Completed" and not TacticResult.final  # never the final verdict


async def test_errors_come_back_as_results() -> None:
    async with ReplPool(REPLAY, size=1, timeout=10) as pool, pool.open_session() as session:
        [root] = await session.start("theorem my_theorem (x : Nat) : x = x := by sorry")
        bad = await session.run_tactic(root, "exact my_fake_premise")  # Lean error inside a proof-step answer
        assert bad.verdict == "error" and bad.error == "Unknown identifier `my_fake_premise`"
        [root2] = await session.start("def f : Nat := by sorry")
        unknown = await session.run_tactic(root2, "exat 42")  # the REPL's own error reply
        assert unknown.error is not None and "unknown tactic" in unknown.error
        again = await _walk(session, ProofState(id=root2.id), ["have t : Nat := 42", "exact t"])  # handle reused
        assert again[-1].verdict == "provisional"
        first = await session.run_tactic(root, "exact my_fake_premise")  # the first start's states stay valid
        assert first.error == bad.error


async def test_proof_status_bug_is_not_a_proof() -> None:
    # recorded: `cases 1; rfl; apply ?succ` leaves no goals but "contains metavariable(s)"
    async with ReplPool(REPLAY, size=1, timeout=10) as pool, pool.open_session() as session:
        [root] = await session.start("example : 1 = 0 := sorry")
        first = await _walk(session, root, ["cases 1", "rfl"])
        assert first[-1].state is not None
        last = await session.run_tactic(first[-1].state, "apply ?succ")
        assert last.verdict == "error" and "metavariable" in (last.error or "")


async def test_pickle_a_state_and_continue_in_another_session(tmp_path: Path) -> None:
    path = str(tmp_path / "state.olean")
    async with ReplPool(REPLAY, size=2, timeout=10) as pool:
        async with pool.open_session() as one:
            [root] = await one.start(BRANCHING)
            [step] = await _walk(one, root, STEPS[:1])
            assert step.state is not None
            await one.pickle_state(step.state, path)
        async with pool.open_session() as two:
            loaded = await two.unpickle_state(path)
            assert loaded.key == step.state.key and len(loaded.goals) == 2
            results = await _walk(two, loaded, STEPS[1:])
            assert results[-1].verdict == "provisional"


async def test_a_crashed_repl_mid_proof_is_replaced_and_states_are_replayed(tmp_path: Path) -> None:
    argv = [*REPLAY, "--crash-once-after", "3", "--fault-counter", str(tmp_path / "crashed")]
    async with ReplPool(argv, size=1, timeout=10, backoff=(0.01, 0.1)) as pool, pool.open_session() as session:
        first_pid = session.pid
        [root] = await session.start(BRANCHING)
        a = await _walk(session, root, STEPS[:2])  # commands 1-3 answered
        assert a[-1].state is not None
        rest = await _walk(session, a[-1].state, STEPS[2:])  # the 4th command crashes the process
        assert rest[-1].verdict == "provisional"
        assert session.restarts == 1 and session.replays >= 3 and session.pid != first_pid


async def test_a_repl_that_keeps_crashing_ends_the_session_cleanly() -> None:
    async with ReplPool([*REPLAY, "--crash-after", "2"], size=1, timeout=10, backoff=(0.01, 0.05)) as pool:
        async with pool.open_session() as session:
            [root] = await session.start(BRANCHING)
            a = await _walk(session, root, STEPS[:1])
            assert a[-1].state is not None
            with pytest.raises(SessionLostError):
                await _walk(session, a[-1].state, STEPS[1:])
        await pool.wait_ready()
        assert pool.alive_count == 1


async def test_session_is_pinned_while_checks_share_the_pool() -> None:
    snippet = Snippet(id="c", code="theorem aa (x : Nat) (h1 : x  = 2) : x = 2 := by sorry")
    async with ReplPool(REPLAY, size=2, timeout=10) as pool, pool.open_session() as session:
        [root] = await session.start(BRANCHING)
        pid = session.pid

        async def tactics() -> None:
            for _ in range(10):
                r = await session.run_tactic(root, STEPS[0])
                assert r.ok and session.pid == pid

        checks = asyncio.gather(*(pool.check([snippet]) for _ in range(20)))
        _, results = await asyncio.gather(tactics(), checks)
        assert all(r[0].status == "ok" for r in results)
        assert pool.alive_count == 2


def test_normalize_goals_ignores_case_tags_and_spacing() -> None:
    assert normalize_goals(["case left\np  q : Prop\n⊢ p"]) == normalize_goals(["p q : Prop\n⊢   p"])
    assert normalize_goals(["⊢ p", "⊢ q"]) != normalize_goals(["⊢ q", "⊢ p"])


async def test_concurrent_tactics_are_pipelined_in_order_and_checks_keep_their_turn() -> None:
    snippet = Snippet(id="c", code="theorem aa (x : Nat) (h1 : x  = 2) : x = 2 := by sorry")
    async with ReplPool(REPLAY, size=1, timeout=10) as pool, pool.open_session() as session:
        [root] = await session.start(BRANCHING)
        tactics = [STEPS[0], "bogus 1", STEPS[0], "bogus 2"] * 4
        results, checks = await asyncio.gather(
            asyncio.gather(*(session.run_tactic(root, t) for t in tactics)),
            asyncio.gather(*(pool.check([snippet]) for _ in range(5))),
        )
        for tactic, result in zip(tactics, results, strict=True):
            assert result.tactic == tactic and result.ok == (tactic == STEPS[0])  # each answer is its own
        assert all(c[0].status == "ok" for c in checks)


async def test_a_crash_in_the_middle_of_a_pipeline_is_recovered(tmp_path: Path) -> None:
    argv = [*REPLAY, "--crash-once-after", "4", "--fault-counter", str(tmp_path / "crashed")]
    async with ReplPool(argv, size=1, timeout=10, backoff=(0.01, 0.1)) as pool, pool.open_session() as session:
        [root] = await session.start(BRANCHING)
        results = await asyncio.gather(*(session.run_tactic(root, STEPS[0]) for _ in range(8)))
        assert all(r.ok and r.state is not None and len(r.state.goals) == 2 for r in results)
        assert session.restarts == 1


async def test_pickle_the_environment_and_start_from_it(tmp_path: Path) -> None:
    path = str(tmp_path / "env.olean")
    async with ReplPool(REPLAY, size=1, timeout=10) as pool:
        async with pool.open_session() as one:
            [root] = await one.start("def f : Nat := by sorry", header="import Lean")
            assert root.goals == ("⊢ Nat",)
            await one.pickle_env(path)
        assert os.path.isfile(path)  # noqa: ASYNC240
        async with pool.open_session() as two:
            [again] = await two.start("def f : Nat := by sorry", env_file=path)
            assert again.goals == ("⊢ Nat",)
