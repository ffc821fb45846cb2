"""The tactic policy: a model proposes ``k`` tactics per proof state, with their log-probabilities.

One :meth:`TacticPolicy.propose` call serves many states at once: one request per state (``n = k`` samples) in one
``generate`` call, so concurrent expansions are batched for the backend. The prompt shows the pretty-printed goals
(and, optionally, demonstrations or retrieved premises); the default format follows the ``[GOAL] ... [PROOFSTEP]``
layout of ReProver-style step provers. A tactic's score is its sampled tokens' summed log-probability; a backend
without sampled log-probs gets a rank-based score (``-log(rank + 1)``), and :attr:`TacticPolicy.scored` says which.

:class:`LLMCritic` optionally scores states with a second model (the log-probability of a ``provable`` marker).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from malot.agents import PromptTemplate
from malot.lean.session import ProofState

__all__ = ["DEFAULT_POLICY_PROMPT", "Critic", "LLMCritic", "Proposal", "TacticPolicy"]

DEFAULT_POLICY_PROMPT = "{{demos}}[THEOREM]\n{{statement}}\n[GOAL]\n{{goals}}\n[PROOFSTEP]\n"


@dataclass(frozen=True, slots=True)
class Proposal:
    """One proposed tactic and its log-probability; ``tokens`` it took to sample."""

    tactic: str
    logprob: float
    tokens: int = 0


@dataclass(slots=True)
class PolicyUsage:
    """What the policy spent: calls, samples drawn, tokens in and out."""

    calls: int = 0
    samples: int = 0
    tokens_in: int = 0
    tokens_out: int = 0


class TacticPolicy:
    """Proposes tactics for proof states with ``llm`` (see the module docstring)."""

    def __init__(
        self,
        llm: Any,
        *,
        k: int = 8,
        prompt: str = DEFAULT_POLICY_PROMPT,
        temperature: float = 1.0,
        top_p: float = 0.95,
        max_tokens: int = 128,
        stop: Sequence[str] = ("\n[", "\n\n"),
        statement: str = "",
        demos: str = "",
        seed: int | None = None,
    ) -> None:
        self.llm = llm
        self.k = k
        self.template = PromptTemplate(prompt)
        self.temperature = temperature
        self.top_p = top_p
        self.max_tokens = max_tokens
        self.stop = list(stop)
        self.statement = statement
        self.demos = demos
        self.seed = seed
        self.usage = PolicyUsage()
        caps = getattr(llm, "capabilities", None)
        self.scored = bool(getattr(caps, "logprobs", False))

    def render(self, state: ProofState) -> str:
        """The prompt for ``state``."""
        return self.template.render(statement=self.statement, goals=state.pretty(), demos=self.demos)

    async def propose(self, states: Sequence[ProofState], *, salt: int = 0) -> list[list[Proposal]]:
        """Up to ``k`` distinct tactics per state (best first), from one batched ``generate`` call."""
        from malot.llm import GenerationRequest, SamplingParams

        if not states:
            return []
        requests = [
            GenerationRequest(
                prompt=self.render(state),
                params=SamplingParams(
                    n=self.k,
                    temperature=self.temperature,
                    top_p=self.top_p,
                    max_tokens=self.max_tokens,
                    stop=self.stop,
                    seed=None if self.seed is None else self.seed + salt + i,
                    logprobs=0 if self.scored else None,
                ),
            )
            for i, state in enumerate(states)
        ]
        results = await self.llm.generate(requests)
        self.usage.calls += 1
        out: list[list[Proposal]] = []
        for result in results:
            self.usage.tokens_in += int(result.prompt_tokens)
            best: dict[str, Proposal] = {}
            for rank, completion in enumerate(result.completions):
                self.usage.samples += 1
                self.usage.tokens_out += int(completion.tokens)
                tactic = completion.text.strip()
                if not tactic:
                    continue
                lp = completion.cumulative_logprob
                score = float(lp) if lp is not None else -math.log(rank + 1)
                if tactic not in best or score > best[tactic].logprob:
                    best[tactic] = Proposal(tactic, score, int(completion.tokens))
            out.append(sorted(best.values(), key=lambda p: -p.logprob))
        return out


class Critic(Protocol):
    """Scores proof states (higher: more promising); added to the cumulative log-probability with a weight."""

    async def score(self, states: Sequence[ProofState]) -> list[float]:
        """One score per state."""
        ...


class LLMCritic:
    """A critic from a second model: the log-probability that it continues the state's prompt with ``marker``."""

    def __init__(self, llm: Any, *, prompt: str = "[GOAL]\n{{goals}}\n[PROVABLE]", marker: str = " yes") -> None:
        self.llm = llm
        self.template = PromptTemplate(prompt)
        self.marker = marker

    async def score(self, states: Sequence[ProofState]) -> list[float]:
        """The marker's log-probability after each state's prompt (one batched scoring call)."""
        from malot.llm import GenerationRequest

        if not states:
            return []
        requests = [
            GenerationRequest(prompt=self.template.render(goals=s.pretty()), score_continuation=self.marker)
            for s in states
        ]
        results = await self.llm.generate(requests)
        return [float(sum(r.continuation_logprobs or [0.0])) for r in results]
