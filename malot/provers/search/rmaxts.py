"""Truncate-and-resume with RMaxTS (DeepSeek-Prover-V1.5): whole-proof generation steered by a search tree.

Each rollout picks a node of the tree (a proof state reached by a valid tactic prefix) by UCB, where every node
also offers a virtual "resume here" child; the model writes a whole proof continuing that prefix (the prompt holds
the statement, the prefix and the current goals as a comment); the continuation's tactics run one by one from the
node's state, the first failing tactic truncates it, and every valid step adds a node (deduplicated by normalised
goals). The reward is RMax's intrinsic one: 1 when the rollout discovered at least one new state, else 0, and it
is backed up along the selected path. A continuation that closes every goal is a proof, which ``confirm`` (the
acceptance rule) must accept.

``width`` rollouts run concurrently (virtual visits keep them apart; their generations are one batched call);
``max_expansions`` counts rollouts.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from malot.agents import PromptTemplate
from malot.lean.session import ProofSession, ProofState
from malot.lean.tactics import split_tactics
from malot.provers.search.cache import TacticCache
from malot.provers.search.common import ConfirmFn, ProgressFn, SearchLimits, SearchOutcome, StopFn, TacticRunner
from malot.provers.search.policy import PolicyUsage
from malot.provers.search.tree import SearchNode, SearchTree, assemble_proof

__all__ = ["DEFAULT_RESUME_PROMPT", "ProofWriter", "Rollout", "TruncateResumeSearch", "truncate"]

DEFAULT_RESUME_PROMPT = (
    "Complete the following Lean 4 proof.\n```lean4\n{{header}}{{proof_so_far}}  /- current goals:\n{{goals}}\n  -/\n"
)


class ProofWriter:
    """Writes whole-proof continuations of a tactic prefix with an LLM (one batched call for many prefixes)."""

    def __init__(
        self,
        llm: Any,
        *,
        statement: str,
        header: str = "",
        prompt: str = DEFAULT_RESUME_PROMPT,
        temperature: float = 1.0,
        top_p: float = 0.95,
        max_tokens: int = 1024,
        stop: Sequence[str] = ("```",),
        seed: int | None = None,
    ) -> None:
        self.llm = llm
        self.statement = statement
        self.header = header
        self.template = PromptTemplate(prompt)
        self.temperature = temperature
        self.top_p = top_p
        self.max_tokens = max_tokens
        self.stop = list(stop)
        self.seed = seed
        self.usage = PolicyUsage()

    def render(self, prefix: list[str], state: ProofState) -> str:
        """The prompt resuming after ``prefix`` at ``state``."""
        so_far = assemble_proof(self.statement, prefix)
        return self.template.render(header=self.header, proof_so_far=so_far, goals=state.pretty())

    async def write(self, items: Sequence[tuple[list[str], ProofState]], *, salt: int = 0) -> list[str]:
        """One continuation (the rest of the tactic block, as text) per ``(prefix, state)``."""
        from malot.llm import GenerationRequest, SamplingParams

        requests = [
            GenerationRequest(
                prompt=self.render(prefix, state),
                params=SamplingParams(
                    n=1,
                    temperature=self.temperature,
                    top_p=self.top_p,
                    max_tokens=self.max_tokens,
                    stop=self.stop,
                    seed=None if self.seed is None else self.seed + salt + i,
                ),
            )
            for i, (prefix, state) in enumerate(items)
        ]
        results = await self.llm.generate(requests)
        self.usage.calls += 1
        out = []
        for result in results:
            self.usage.tokens_in += int(result.prompt_tokens)
            completion = result.completions[0] if result.completions else None
            self.usage.samples += 1
            self.usage.tokens_out += int(completion.tokens) if completion else 0
            out.append(completion.text if completion else "")
        return out


def truncate(text: str) -> list[str]:
    """The top-level tactics of a continuation, without comments-only lines and a closing fence."""
    lines = [line for line in text.split("\n") if not line.strip().startswith("--")]
    body = "\n".join(lines).split("```", 1)[0]
    return [t for t in split_tactics(body) if t and not (t.startswith("/-") and t.endswith("-/"))]


@dataclass(slots=True)
class Rollout:
    """One rollout: where it resumed, the tactics it tried, how many were valid, and what it found."""

    node: int
    tactics: list[str]
    valid: int
    first_error: str | None
    new_states: int
    proved: bool


class TruncateResumeSearch:
    """Truncate-and-resume with RMaxTS from a root state (see the module docstring)."""

    def __init__(
        self,
        session: ProofSession,
        writer: ProofWriter,
        *,
        limits: SearchLimits | None = None,
        cache: TacticCache | None = None,
        exploration: float = 1.0,
        confirm: ConfirmFn | None = None,
        should_stop: StopFn | None = None,
        progress: ProgressFn | None = None,
        tactic_timeout: float | None = None,
    ) -> None:
        self.writer = writer
        self.limits = limits or SearchLimits()
        self.runner = TacticRunner(session, cache, tactic_timeout)
        self.exploration = exploration
        self.confirm = confirm
        self.should_stop = should_stop
        self.progress = progress
        self.tree = SearchTree()
        self.children: dict[int, list[SearchNode]] = {}
        self.rollouts: list[Rollout] = []
        self.expansions = 0
        self.rejected = 0

    async def run(self, root: ProofState) -> SearchOutcome:
        """Run rollouts from ``root`` until a confirmed proof or a limit."""
        started = time.perf_counter()
        proof: list[str] | None = None
        try:
            async with asyncio.timeout(self.limits.max_time_s):
                proof, stopped = await self._search(root)
        except TimeoutError:
            stopped = "max_time"
        usage = self.writer.usage
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
            extra={"rollouts": len(self.rollouts), "rewarded": sum(1 for r in self.rollouts if r.new_states)},
        )

    async def _search(self, root: ProofState) -> tuple[list[str] | None, str]:
        if root.closed:
            return [], "proved"
        self.tree.add_root(root)
        while True:
            room = min(self.limits.width, self.limits.max_expansions - self.expansions)
            if room <= 0:
                return None, "max_expansions"
            reason = self.should_stop() if self.should_stop is not None else None
            if reason is not None:
                return None, f"budget:{reason}"
            paths = [self._select() for _ in range(room)]
            self.expansions += len(paths)
            leaves = [path[-1] for path in paths]
            texts = await self.writer.write([(n.path(), n.state) for n in leaves], salt=self.expansions)
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(self._resume(leaf, text)) for leaf, text in zip(leaves, texts, strict=True)]
            proof: list[str] | None = None
            for path, task in zip(paths, tasks, strict=True):
                rollout, found = task.result()
                self.rollouts.append(rollout)
                self._backup(path, 1.0 if rollout.new_states else 0.0)
                if found is not None and proof is None:
                    proof = found
            self._report()
            if proof is not None:
                return proof, "proved"

    def _ucb(self, visits: int, value: float, parent_visits: int) -> float:
        if visits == 0:
            return math.inf  # RMax: an untried option is worth the maximum reward
        return value / visits + self.exploration * math.sqrt(math.log(parent_visits + 1) / visits)

    def _select(self) -> list[SearchNode]:
        """The path to the node to resume from; counts the visit along it at once (so concurrent rollouts spread),
        :meth:`_backup` adds the reward later."""
        node = self.tree.nodes[0]
        path = [node]
        while True:
            node.visits += 1
            options: list[tuple[float, int, SearchNode | None]] = [
                (self._ucb(node.resumes, node.resume_value, node.visits), -1, None)
            ]
            for i, child in enumerate(self.children.get(node.id, [])):
                if child.state.goals and child.depth < self.limits.max_depth:
                    options.append((self._ucb(child.visits, child.value, node.visits), i, child))
            _, _, best = max(options, key=lambda o: (o[0], o[1] >= 0, -o[1]))  # ties: go deeper, earlier child
            if best is None:
                node.resumes += 1
                return path
            node = best
            path.append(node)

    def _backup(self, path: list[SearchNode], reward: float) -> None:
        for node in path:
            node.value += reward
        path[-1].resume_value += reward

    async def _resume(self, start: SearchNode, text: str) -> tuple[Rollout, list[str] | None]:
        """Run the continuation's tactics from ``start`` until the first error (truncate); keep the valid prefix."""
        tactics = truncate(text)
        node = start
        valid = 0
        new_states = 0
        error: str | None = None
        for tactic in tactics:
            result = await self.runner.run(node.state, tactic)
            if result.error is not None or result.state is None:
                error = result.error or "no state"
                self.tree.add_error(node, tactic, 0.0, error)
                break
            child, new = self.tree.add_child(node, tactic, 0.0, result.state, 0.0)
            valid += 1
            if result.state.closed:
                path = child.path()
                if self.confirm is None or await self.confirm(path):
                    child.status = "proved"
                    return Rollout(start.id, tactics, valid, None, new_states, True), path
                child.status = "rejected"
                self.rejected += 1
                error = "the acceptance rule rejected the proof"
                break
            if new:
                new_states += 1
                self.children.setdefault(node.id, []).append(child)
            if child.depth >= self.limits.max_depth:
                error = "depth limit"
                break
            node = child
        return Rollout(start.id, tactics, valid, error, new_states, False), None

    def _report(self) -> None:
        if self.progress is None:
            return
        self.progress(
            {
                "expansions": self.expansions,
                "open": self.tree.open_nodes,
                "best_score": round(max((r.valid for r in self.rollouts), default=0), 4),
                "tactic_calls": self.runner.calls,
                "nodes": len(self.tree.nodes),
            }
        )
