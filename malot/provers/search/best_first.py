"""Best-first search over proof states (ReProver / InternLM-StepProver / BFS-Prover style).

The open state with the highest priority is expanded next: the policy proposes ``k`` tactics, each runs on the
state, and every new state enters the queue with priority = cumulative log-probability of its path (plus
``critic_weight`` x a critic's score). ``width`` states are expanded at once (one batched policy call, their
tactics run concurrently); with ``width = 1`` the order is exactly best-first. Results are taken in proposal order;
with ``width = 1`` and no critic, the next expansion starts as soon as it is settled (the best open state beats
every answer still out, which can score at most the parent's plus the next proposal's log-probability), so Lean
goes on with it while the rest of the answers arrive, without changing the order. States are deduplicated by their
normalised goals. The first tactic that closes every goal gives the proof (the path's tactics), which ``confirm``
(the acceptance rule) must accept; a rejected proof does not stop the search.

Limits: ``max_expansions`` (states expanded; never exceeded), ``max_depth``, ``max_time_s``, and ``should_stop``
(the executor's shared budget). Cancelling :meth:`BestFirstSearch.run` cancels every tactic and policy call in
flight.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from dataclasses import dataclass
from typing import Any

from malot.lean.session import ProofSession, ProofState
from malot.provers.search.cache import TacticCache
from malot.provers.search.common import ConfirmFn, ProgressFn, SearchLimits, SearchOutcome, StopFn, TacticRunner
from malot.provers.search.policy import Critic, Proposal, TacticPolicy
from malot.provers.search.tree import SearchNode, SearchTree

__all__ = ["BestFirstSearch"]


@dataclass(slots=True)
class _Batch:
    """States being expanded together: their (state, proposal) jobs and the tactic runs in flight."""

    nodes: list[SearchNode]
    jobs: list[tuple[SearchNode, Proposal]]
    tasks: list[asyncio.Task[Any]]


class BestFirstSearch:
    """One best-first search from a root state (see the module docstring)."""

    def __init__(
        self,
        session: ProofSession,
        policy: TacticPolicy,
        *,
        limits: SearchLimits | None = None,
        cache: TacticCache | None = None,
        critic: Critic | None = None,
        confirm: ConfirmFn | None = None,
        should_stop: StopFn | None = None,
        progress: ProgressFn | None = None,
        tactic_timeout: float | None = None,
    ) -> None:
        self.policy = policy
        self.limits = limits or SearchLimits()
        self.runner = TacticRunner(session, cache, tactic_timeout)
        self.critic = critic
        self.confirm = confirm
        self.should_stop = should_stop
        self.progress = progress
        self.tree = SearchTree()
        self.expansions = 0
        self.rejected = 0
        self._heap: list[tuple[float, int, SearchNode]] = []
        self._seq = 0

    def _priority(self, node: SearchNode) -> float:
        return node.score + self.limits.critic_weight * node.critic

    def _push(self, node: SearchNode) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (-self._priority(node), self._seq, node))

    def _pop_batch(self) -> list[SearchNode]:
        room = min(self.limits.width, self.limits.max_expansions - self.expansions)
        batch: list[SearchNode] = []
        while self._heap and len(batch) < room:
            neg, _, node = heapq.heappop(self._heap)
            if node.status != "open" or -neg != self._priority(node):
                continue  # expanded already, or re-queued with a better score
            batch.append(node)
        return batch

    async def run(self, root: ProofState) -> SearchOutcome:
        """Search from ``root`` until a confirmed proof, exhaustion or a limit."""
        started = time.perf_counter()
        proof: list[str] | None = None
        try:
            async with asyncio.timeout(self.limits.max_time_s):
                proof, stopped = await self._search(root)
        except TimeoutError:
            stopped = "max_time"
        usage = self.policy.usage
        return SearchOutcome(
            proof=proof,
            stopped=stopped,
            expansions=self.expansions,
            tactic_calls=self.runner.calls,
            cache_hits=self.runner.hits,
            tree=self.tree,
            rejected=self.rejected,
            policy_calls=usage.calls,
            samples=usage.samples,
            tokens_in=usage.tokens_in,
            tokens_out=usage.tokens_out,
            wall_s=time.perf_counter() - started,
            session_errors=self.runner.session_errors,
        )

    async def _search(self, root: ProofState) -> tuple[list[str] | None, str]:
        if root.closed:
            return [], "proved"
        self._push(self.tree.add_root(root))
        async with asyncio.TaskGroup() as tg:
            current = await self._start(tg)
            while isinstance(current, _Batch):
                following, proof = await self._finish(tg, current)
                self._report()
                if proof is not None:
                    for task in (*current.tasks, *(following.tasks if isinstance(following, _Batch) else ())):
                        task.cancel()  # the proof is found: nothing still in flight matters
                    return proof, "proved"
                current = following if following is not None else await self._start(tg)
        assert isinstance(current, str)
        return None, current

    async def _start(self, tg: asyncio.TaskGroup) -> _Batch | str:
        """Pop the next states, ask the policy, and start their tactics; or the reason the search stops."""
        if self.expansions >= self.limits.max_expansions:
            return "max_expansions"
        reason = self.should_stop() if self.should_stop is not None else None
        if reason is not None:
            return f"budget:{reason}"
        batch = self._pop_batch()
        if not batch:
            return "exhausted"
        for node in batch:
            node.status = "expanded"
        self.expansions += len(batch)
        proposals = await self.policy.propose([n.state for n in batch], salt=self.expansions)
        jobs = [(node, p) for node, props in zip(batch, proposals, strict=True) for p in props]
        tasks = [tg.create_task(self.runner.run(node.state, p.tactic)) for node, p in jobs]
        return _Batch(batch, jobs, tasks)

    def _next_is_settled(self, batch: _Batch, done: int) -> bool:
        """With one state per expansion and no critic, whether the next state to expand is known although
        ``batch`` still has results out: the best open state beats every result still to come (their scores are
        at most the parent's plus the next proposal's log-probability, and a tie goes to the older entry)."""
        if len(batch.nodes) != 1 or (self.critic is not None and self.limits.critic_weight) or done >= len(batch.jobs):
            return False
        node, proposal = batch.jobs[done]
        bound = node.score + proposal.logprob
        while self._heap:
            neg, _, top = self._heap[0]
            if top.status == "open" and -neg == self._priority(top):
                return -neg >= bound
            heapq.heappop(self._heap)  # a stale entry
        return False

    async def _finish(self, tg: asyncio.TaskGroup, batch: _Batch) -> tuple[_Batch | str | None, list[str] | None]:
        """Take ``batch``'s results in proposal order; start the next expansion as soon as it is settled (so the
        REPL goes on with it while the rest of this batch's answers come in). Returns (the next batch or stop
        reason if started early, the proof if one was found)."""
        following: _Batch | str | None = None
        fresh: list[SearchNode] = []
        eager = len(batch.nodes) == 1 and not (self.critic is not None and self.limits.critic_weight)
        for index, ((node, p), task) in enumerate(zip(batch.jobs, batch.tasks, strict=True)):
            result = await task
            if result.error is not None or result.state is None:
                self.tree.add_error(node, p.tactic, p.logprob, result.error or "no state")
            elif result.state.goals and node.depth + 1 > self.limits.max_depth:
                self.tree.add_error(node, p.tactic, p.logprob, "depth limit")
            else:
                child, new = self.tree.add_child(node, p.tactic, p.logprob, result.state, node.score + p.logprob)
                if result.state.closed:
                    tactics = child.path()
                    if self.confirm is None or await self.confirm(tactics):
                        child.status = "proved"
                        return following, tactics
                    child.status = "rejected"
                    self.rejected += 1
                elif new:
                    if eager:
                        self._push(child)
                    else:
                        fresh.append(child)
                elif child.status == "open":
                    self._push(child)  # merged with a better path: re-queued at its new priority
            if following is None and self._next_is_settled(batch, index + 1):
                following = await self._start(tg)
        if self.critic is not None and fresh and self.limits.critic_weight:
            for node, score in zip(fresh, await self.critic.score([n.state for n in fresh]), strict=True):
                node.critic = score
        for node in fresh:
            self._push(node)
        return following, None

    def _report(self) -> None:
        if self.progress is None:
            return
        best = max((-neg for neg, _, n in self._heap if n.status == "open"), default=None)
        data: dict[str, Any] = {
            "expansions": self.expansions,
            "open": self.tree.open_nodes,
            "best_score": round(best, 4) if best is not None else None,
            "tactic_calls": self.runner.calls,
            "nodes": len(self.tree.nodes),
        }
        self.progress(data)
