"""The searches on the toy goal-rewriting environment (a test double of the proof session) and a scripted policy."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from malot.lean.session import ProofState
from malot.llm.base import Capabilities, GenerationRequest
from malot.llm.fake import ScriptedLLM
from malot.provers.search.best_first import BestFirstSearch
from malot.provers.search.cache import TacticCache
from malot.provers.search.common import SearchLimits
from malot.provers.search.policy import TacticPolicy
from malot.provers.search.rmaxts import ProofWriter, TruncateResumeSearch, truncate
from malot.provers.search.tree import assemble_proof
from malot.testing.toy_tactics import ToyError, ToyTacticEnv


def policy_llm(table: Mapping[str, Sequence[tuple[str, float]]]) -> ScriptedLLM:
    """A zero-latency policy: for the first goal in the prompt, the listed tactics with their log-probs."""

    def answer(request: GenerationRequest) -> list[dict[str, Any]]:
        text = str(request.prompt)
        goals = text.split("[GOAL]\n", 1)[1].split("\n[PROOFSTEP]", 1)[0]
        first = goals.split("\n\n", 1)[0]
        options = list(table.get(first, [("sorry_not_a_rule", -50.0)]))
        n = request.params.n
        padded = (options * n)[:n] if options else []
        return [{"text": t, "logprobs": [lp]} for t, lp in padded]

    return ScriptedLLM(answer, capabilities=Capabilities(backend="scripted", logprobs=True))


# A crafted graph: from A the likely tactic `a1` leads to a long dead end (B -> C -> D, with falling scores),
# the less likely `a2` leads to E, which `e1` closes.
RULES: dict[str, dict[str, Any]] = {
    "A": {"a1": ["B"], "a2": ["E"]},
    "B": {"b1": ["C"]},
    "C": {"c1": ["D"]},
    "D": {"d1": ToyError("no progress")},
    "E": {"e1": []},
}
POLICY = {
    "A": [("a1", -0.1), ("a2", -1.0)],
    "B": [("b1", -0.2)],
    "C": [("c1", -2.0)],
    "D": [("d1", -0.1)],
    "E": [("e1", -0.1)],
}


async def search(rules: Mapping[str, Any], policy: Mapping[str, Any], goal: str = "A", **kw: Any) -> Any:
    env = ToyTacticEnv(rules)
    [root] = await env.start(goal)
    k = kw.pop("k", 2)
    limits = SearchLimits(**{"width": 1, **kw.pop("limits", {})})
    engine = BestFirstSearch(env, TacticPolicy(policy_llm(policy), k=k), limits=limits, **kw)
    return await engine.run(root), env


async def test_best_first_expands_in_score_order_and_returns_the_path_taken() -> None:
    outcome, env = await search(RULES, POLICY)
    # scores: B -0.1, C -0.3 and E -1.0, then D -2.3: expanded A, B, C, E -> E's tactic closes the goal
    assert outcome.proof == ["a2", "e1"]
    assert outcome.expansions == 4 and outcome.stopped == "proved"
    expanded = [goals[0] for goals, _ in env.calls]
    assert expanded == ["A", "A", "B", "C", "E"]
    proved = next(n for n in outcome.tree.nodes if n.status == "proved")
    assert proved.path() == outcome.proof
    assert assemble_proof("theorem t : A := by", outcome.proof) == "theorem t : A := by\n  a2\n  e1\n"


async def test_fewest_expansions_on_a_graph_where_breadth_first_needs_more() -> None:
    # two routes: a cheap deep one (5 steps, each -0.1) and an expensive shallow one (1 step, -5)
    rules: dict[str, dict[str, Any]] = {"S": {"deep": ["d1"], "shallow": ["x"]}, "x": {"close": ToyError("nope")}}
    policy: dict[str, list[tuple[str, float]]] = {"S": [("deep", -0.1), ("shallow", -5.0)]}
    for i in range(1, 5):
        rules[f"d{i}"] = {"step": [f"d{i + 1}"]}
        policy[f"d{i}"] = [("step", -0.1)]
    rules["d5"] = {"done": []}
    policy["d5"] = [("done", -0.1)]
    outcome, _ = await search(rules, policy, goal="S")
    assert outcome.proof == ["deep", "step", "step", "step", "step", "done"]
    assert outcome.expansions == 6  # S, d1..d5: the shallow x (score -5) is never expanded
    assert all(n.status != "expanded" for n in outcome.tree.nodes if n.state.goals == ("x",))


async def test_equal_states_are_merged() -> None:
    rules = {"A": {"l": ["M"], "r": ["M "]}, "M": {"m": ToyError()}}  # 'M' and 'M ' print the same
    outcome, env = await search(rules, {"A": [("l", -0.1), ("r", -0.2)], "M": [("m", -0.1)]})
    assert outcome.tree.merges == 1 and outcome.stopped == "exhausted"
    assert [goals for goals, _ in env.calls].count(("M",)) == 1  # M expanded once
    assert len([n for n in outcome.tree.nodes if n.state.key == "M"]) == 1


async def test_the_expansion_budget_stops_exactly() -> None:
    rules = {f"g{i}": {"t": [f"g{i + 1}"], "u": [f"h{i}"]} for i in range(100)}
    policy = {f"g{i}": [("t", -0.1), ("u", -0.2)] for i in range(100)}
    for width in (1, 3):
        outcome, env = await search(rules, policy, goal="g0", limits={"max_expansions": 7, "width": width})
        assert outcome.expansions == 7 and outcome.stopped == "max_expansions"
        assert len({goals for goals, _ in env.calls}) == 7


async def test_depth_limit() -> None:
    rules = {f"g{i}": {"t": [f"g{i + 1}"]} for i in range(10)}
    outcome, _ = await search(rules, {f"g{i}": [("t", -0.1)] for i in range(10)}, goal="g0", limits={"max_depth": 3})
    assert outcome.stopped == "exhausted" and max(n.depth for n in outcome.tree.nodes) == 3


async def test_cancellation_stops_every_branch() -> None:
    gate = asyncio.Event()
    env = ToyTacticEnv(RULES, gate=gate)
    [root] = await env.start("A")
    engine = BestFirstSearch(env, TacticPolicy(policy_llm(POLICY), k=2), limits=SearchLimits(width=4))
    task = asyncio.create_task(engine.run(root))
    await env.wait_in_flight(2)  # both tactics of the root are in flight
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert env.in_flight == 0 and len(env.calls) == 2
    gate.set()
    await asyncio.sleep(0)
    assert len(env.calls) == 2  # nothing started after the cancellation


async def test_concurrent_searches_share_the_tactic_cache() -> None:
    env = ToyTacticEnv(RULES)
    cache = TacticCache()
    [root] = await env.start("A")

    async def one() -> Any:
        engine = BestFirstSearch(env, TacticPolicy(policy_llm(POLICY), k=2), limits=SearchLimits(width=1), cache=cache)
        return await engine.run(root)

    a, b = await asyncio.gather(one(), one())
    assert a.proof == b.proof == ["a2", "e1"]
    assert len(env.calls) == 5 and a.tactic_calls + b.tactic_calls == 5 and a.cache_hits + b.cache_hits == 5


async def test_a_rejected_proof_does_not_stop_the_search() -> None:
    rules = {"A": {"fake": [], "a": ["B"]}, "B": {"real": []}}
    policy = {"A": [("fake", -0.1), ("a", -0.2)], "B": [("real", -0.1)]}
    seen: list[list[str]] = []

    async def confirm(tactics: list[str]) -> bool:
        seen.append(tactics)
        return tactics != ["fake"]  # the acceptance rule rejects what tactic mode accepted

    outcome, _ = await search(rules, policy, confirm=confirm)
    assert seen == [["fake"], ["a", "real"]] and outcome.proof == ["a", "real"] and outcome.rejected == 1


async def test_critic_reorders_the_queue() -> None:
    class Prefers:
        async def score(self, states: Sequence[ProofState]) -> list[float]:
            return [10.0 if s.goals == ("E",) else 0.0 for s in states]

    outcome, _ = await search(RULES, POLICY, critic=Prefers(), limits={"critic_weight": 1.0})
    assert outcome.expansions == 2 and outcome.proof == ["a2", "e1"]


async def test_budget_hook_stops_the_search() -> None:
    calls = iter([None, None, "tokens"])
    outcome, _ = await search(RULES, POLICY, should_stop=lambda: next(calls))
    assert outcome.stopped == "budget:tokens" and outcome.expansions == 2


async def test_progress_reports() -> None:
    reports: list[dict[str, Any]] = []
    await search(RULES, POLICY, progress=reports.append)
    # B (score -0.1) is settled as the next state once a1's result is in: its expansion starts before a2's answer
    assert [r["expansions"] for r in reports] == [2, 2, 3, 4]
    assert reports[0]["open"] == 1 and math.isclose(reports[0]["best_score"], -1.0)


# --- truncate-and-resume ------------------------------------------------------------------------------------

CHAIN = {"P": {"s1": ["Q"]}, "Q": {"s2": ["R"]}, "R": {"s3": []}}


async def test_truncate_and_resume_keeps_the_valid_prefix_and_resumes_after_it() -> None:
    # the first whole proof is right for two steps, then fails at its third tactic (`oops`)
    answers = ["  s1\n  s2\n  oops\n  s3\n```", "  s3\n```"]
    llm = ScriptedLLM(answers)
    env = ToyTacticEnv(CHAIN)
    [root] = await env.start("P")
    writer = ProofWriter(llm, statement="theorem t : P := by")
    engine = TruncateResumeSearch(env, writer, limits=SearchLimits(width=1))
    outcome = await engine.run(root)
    assert outcome.proof == ["s1", "s2", "s3"] and outcome.expansions == 2
    first, second = engine.rollouts
    assert first.valid == 2 and first.first_error == "unknown tactic" and first.new_states == 2
    # the second generation resumed from the deepest new state (RMax prefers untried options), after the prefix
    assert second.node == 2 and "  s1\n  s2\n  /- current goals:\nR" in llm.prompts[1]
    assert [c[1] for c in env.calls] == ["s1", "s2", "oops", "s3"]


async def test_rmaxts_rewards_new_states_only() -> None:
    llm = ScriptedLLM(["  s1\n  bad", "  s1\n  bad", "  s1\n  s2\n  s3"])
    env = ToyTacticEnv(CHAIN)
    [root] = await env.start("P")
    engine = TruncateResumeSearch(env, ProofWriter(llm, statement="theorem t : P := by"), limits=SearchLimits(width=1))
    outcome = await engine.run(root)
    assert [r.new_states for r in engine.rollouts] == [1, 0, 1] and outcome.proved
    assert engine.tree.nodes[0].value == 2.0  # two rewarded rollouts through the root


async def test_rmaxts_limits() -> None:
    llm = ScriptedLLM(["  nope"], on_exhausted="repeat_last")
    env = ToyTacticEnv(CHAIN)
    [root] = await env.start("P")
    engine = TruncateResumeSearch(
        env, ProofWriter(llm, statement="theorem t : P := by"), limits=SearchLimits(width=2, max_expansions=5)
    )
    outcome = await engine.run(root)
    assert outcome.expansions == 5 and outcome.stopped == "max_expansions" and not outcome.proved


def test_truncate_splits_top_level_tactics() -> None:
    text = "  constructor\n  · intro h\n    exact h\n  -- a comment\n  simp\n```\nrest"
    assert truncate(text) == ["constructor", "· intro h\n  exact h", "simp"]


async def test_llm_critic_scores_states_with_a_second_model() -> None:
    from malot.provers.search.policy import LLMCritic

    critic_llm = ScriptedLLM(["unused"], scorer=lambda r: -0.5 if "⊢ E" in str(r.prompt) else -3.0)
    critic = LLMCritic(critic_llm)
    scores = await critic.score([ProofState(id=0, goals=("⊢ E",)), ProofState(id=1, goals=("⊢ B",))])
    assert scores == [-0.5, -3.0] and critic_llm.requests[0].score_continuation == " yes"


async def test_the_next_expansion_starts_once_settled_while_worse_answers_are_out() -> None:
    class Held(ToyTacticEnv):
        """The toy environment whose tactic `slow` answers only once `b1` has started."""

        def __init__(self, rules: Mapping[str, Any]) -> None:
            super().__init__(rules)
            self.release = asyncio.Event()
            self.in_flight_at: list[tuple[str, int]] = []
            self.held = 0

        async def run_tactic(self, state: ProofState, tactic: str, timeout: float | None = None) -> Any:  # noqa: ASYNC109
            self.in_flight_at.append((tactic, self.held))
            if tactic == "b1":
                self.release.set()
            if tactic == "slow":
                self.held += 1
                await self.release.wait()
            return await super().run_tactic(state, tactic, timeout)

    env = Held({"A": {"a1": ["B"], "slow": ToyError()}, "B": {"b1": []}})
    [root] = await env.start("A")
    policy = TacticPolicy(policy_llm({"A": [("a1", -0.1), ("slow", -2.0)], "B": [("b1", -0.1)]}), k=2)
    outcome = await BestFirstSearch(env, policy, limits=SearchLimits(width=1)).run(root)
    # B (-0.1) beats anything `slow` (at most -2.0) could give, so B was expanded while `slow` was still out
    assert outcome.proof == ["a1", "b1"] and ("b1", 1) in env.in_flight_at and outcome.expansions == 2
