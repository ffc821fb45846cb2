"""``best-first`` and ``rmaxts`` end to end: the Prover API and the CLI on the REPL pool with the replay double."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from malot.agents import read_trace
from malot.config import Settings
from malot.lean.repl.pool import ReplPool
from malot.llm.base import Capabilities, GenerationRequest
from malot.llm.fake import ScriptedLLM
from malot.provers import Problem, Prover
from malot.provers.search.strategy import SearchCandidate
from malot.provers.strategies import make_strategy

DATA = Path(__file__).resolve().parents[1] / "data" / "repl_transcripts"
REPLAY = [sys.executable, "-m", "malot.testing.repl_replay", "--mode", "lookup", "--compose", str(DATA)]
STATEMENT = "theorem complex_and (p q r : Prop) (h1 : p ∧ q) (h2 : q → r) : p ∧ r := by"
PROBLEM = Problem.from_statement(STATEMENT, header="")  # recorded without imports
# first goal (without hypotheses) -> proposed tactics, best first; wrong tactics get the double's error reply
TACTICS = {
    "⊢ p ∧ r": [("constructor", -0.2), ("apply And.intro", -0.5)],
    "⊢ p": [("exact h1.left", -0.1), ("simp", -0.3)],
    "⊢ r": [("apply h2", -0.3), ("exact h1", -0.2)],
    "⊢ q": [("exact h1.right", -0.1)],
}


def policy(request: GenerationRequest) -> list[dict[str, Any]]:
    goals = str(request.prompt).split("[GOAL]\n", 1)[1].split("\n[PROOFSTEP]", 1)[0]
    target = goals.split("\n\n", 1)[0].rsplit("\n", 1)[-1]
    options = TACTICS.get(target, [("rfl", -1.0)])
    return [{"text": t, "logprobs": [lp]} for t, lp in (options * request.params.n)[: request.params.n]]


def settings(tmp_path: Path, **search: Any) -> Settings:
    return Settings.model_validate(
        {
            "output": {"dir": str(tmp_path)},
            "prover": {"samples": 2},
            "search": {"tactics_per_state": 2, "width": 2, **search},
        }
    )


@pytest.mark.slow
async def test_best_first_proves_a_replayed_problem_through_the_api(tmp_path: Path) -> None:
    llm = ScriptedLLM(policy, capabilities=Capabilities(backend="scripted", logprobs=True))
    events: list[dict[str, Any]] = []
    async with (
        ReplPool(REPLAY, size=2, timeout=10) as pool,
        Prover(
            settings(tmp_path), llm=llm, verifier=pool, trace=tmp_path / "t.jsonl", on_event=events.append
        ) as prover,
    ):
        result = await prover.prove(PROBLEM, strategy="best-first")
    assert result.proved and result.strategy == "best-first"
    assert (
        result.proof is not None and "  apply And.intro\n  exact h1.left\n  apply h2\n  exact h1.right" in result.proof
    )
    progress = [e["data"]["search"] for e in events if e.get("type") == "note" and "attempt_id" in e.get("data", {})]
    assert progress and {"expansions", "open", "best_score"} <= progress[0].keys()
    steps = [s for g in read_trace(tmp_path / "t.jsonl").groups.values() for a in g.attempts.values() for s in a.steps]
    search_steps = [s for s in steps if s.node == "search"]
    tree = next(n["search_tree"] for s in search_steps for n in s.notes if "search_tree" in n)
    assert any(e.get("error") for e in tree["edges"]) and any(n["status"] == "proved" for n in tree["nodes"])
    verdicts = [s for s in steps if s.node == "verifier"]
    assert any(s.outcome == "verified" for s in verdicts)  # the acceptance rule's whole-proof verdict is final


@pytest.mark.slow
async def test_rmaxts_proves_it_by_truncate_and_resume(tmp_path: Path) -> None:
    # the first whole proof goes wrong at its third tactic; the second resumes after the valid prefix
    answers = ["  apply And.intro\n  exact h1.left\n  exact h1\n```", "  apply h2\n  exact h1.right\n```"]
    llm = ScriptedLLM(answers, on_exhausted="repeat_last")
    async with (
        ReplPool(REPLAY, size=1, timeout=10) as pool,
        Prover(settings(tmp_path, width=1), llm=llm, verifier=pool) as prover,
    ):
        result = await prover.prove(PROBLEM, strategy="rmaxts", samples=1)
    assert result.proved and result.proof is not None and "exact h1.right" in result.proof
    assert "  apply And.intro\n  exact h1.left\n  /- current goals:" in llm.prompts[1]


def test_strategies_are_registered_with_their_settings() -> None:
    s = Settings.model_validate({"search": {"max_expansions": 7}})
    for name in ("best-first", "rmaxts"):
        strategy = make_strategy(name, rounds=2, settings=s)
        assert strategy.name == name and strategy.describe()["search"]["max_expansions"] == 7
        assert strategy.workflow().start == "search"


async def test_a_verifier_without_sessions_is_a_clear_error(tmp_path: Path) -> None:
    from malot.errors import MalotError

    class NoSessions:
        name = "files"
        sandboxed = False

        async def check(self, snippets: Any, timeout: Any = None) -> list[Any]:  # noqa: ASYNC109
            return []

        async def __aenter__(self) -> NoSessions:
            return self

        async def __aexit__(self, *exc: object) -> None:
            return None

        async def aclose(self) -> None:
            return None

    llm = ScriptedLLM(policy, capabilities=Capabilities(backend="scripted", logprobs=True))
    async with Prover(settings(tmp_path), llm=llm, verifier=NoSessions()) as prover:
        with pytest.raises(MalotError, match="ConfigError: tactic-level search needs a verifier with interactive"):
            await prover.prove(PROBLEM, strategy="best-first", samples=1)


def test_search_candidate_is_a_proof_candidate() -> None:
    c = SearchCandidate(code="x", search={"expansions": 3})
    assert json.loads(c.model_dump_json())["search"]["expansions"] == 3


@pytest.mark.slow
async def test_a_repl_crash_mid_search_does_not_lose_the_proof(tmp_path: Path) -> None:
    argv = [*REPLAY, "--crash-once-after", "5", "--fault-counter", str(tmp_path / "crashed")]
    llm = ScriptedLLM(policy, capabilities=Capabilities(backend="scripted", logprobs=True))
    async with (
        ReplPool(argv, size=1, timeout=10, backoff=(0.01, 0.1)) as pool,
        Prover(settings(tmp_path), llm=llm, verifier=pool) as prover,
    ):
        result = await prover.prove(PROBLEM, strategy="best-first", samples=1)
        assert pool.restarts >= 1
    assert result.proved and result.summary["search"]["expansions"] >= 4
