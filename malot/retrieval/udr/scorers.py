"""Feedback scorers: how useful is demonstration ``c`` for solving query ``q``? Higher is better.

* :class:`LMFeedbackScorer` - the paper's signal: the mean log-probability a language model gives the query's
  target (its proof) after a prompt holding the demonstration and then the query's problem. It works with any
  ``malot.llm`` backend that reports prompt log-probs (``score_continuation``).
* :class:`ProxyScorer` - an offline stand-in for machines with no causal LM: the Jaccard overlap of the Lean
  identifiers (tactics, lemmas, constants) the two proofs use.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from malot.errors import CapabilityError, RetrievalError
from malot.retrieval.corpus import Demonstration
from malot.retrieval.text import LEAN_PROOF_INSTRUCTION
from malot.retrieval.tokens import proof_identifiers

__all__ = ["FeedbackScorer", "LMFeedbackScorer", "ProxyScorer", "feedback_prompt", "proof_overlap"]

Pair = tuple[Demonstration, Demonstration]


@runtime_checkable
class FeedbackScorer(Protocol):
    """Scores (query, candidate) pairs; a higher score means the candidate helps the query more."""

    name: str

    async def score(self, pairs: Sequence[Pair]) -> list[float]:
        """One score per ``(query, candidate)`` pair, in order."""
        ...


def proof_overlap(a: Demonstration, b: Demonstration) -> float:
    """Jaccard overlap of the Lean identifiers used by the proofs of ``a`` and ``b`` (0 when either uses none)."""
    ia = proof_identifiers(a.proof, a.statement)
    ib = proof_identifiers(b.proof, b.statement)
    if not ia or not ib:
        return 0.0
    return len(ia & ib) / len(ia | ib)


class ProxyScorer:
    """The offline feedback scorer: :func:`proof_overlap` of the query's proof and the candidate's proof."""

    name = "proxy"

    async def score(self, pairs: Sequence[Pair]) -> list[float]:
        """Proof-identifier overlap per pair (needs the query's proof, as the LM scorer does)."""
        return [proof_overlap(q, c) for q, c in pairs]


def feedback_prompt(
    query: Demonstration,
    candidate: Demonstration,
    instruction: str = LEAN_PROOF_INSTRUCTION,
    max_demo_chars: int | None = None,
) -> str:
    """The scoring prompt: instruction, the demonstration (problem and proof), then the query's problem.

    The query's proof is scored as the continuation of this prompt. ``max_demo_chars`` cuts the demonstration
    (keeping its start) so prompts fit models with a short context.
    """
    demo = f"{candidate.input_text}\n{candidate.proof.strip(chr(10))}".rstrip()
    if max_demo_chars is not None and len(demo) > max_demo_chars:
        demo = demo[:max_demo_chars]
    target = query.input_text.rstrip()
    return f"{instruction}\n\n{demo}\n\n{target}\n"


class LMFeedbackScorer:
    """The paper's feedback: mean log-probability of the query's proof given the demonstration and the query.

    ``llm`` is any :class:`malot.llm.LLM` whose capabilities include prompt log-probs; requests are sent in batches
    of ``batch_size`` with at most ``concurrency`` batches in flight. ``max_demo_chars`` bounds the demonstration's
    share of each prompt (see :func:`feedback_prompt`) for models with a short context.
    """

    name = "lm"

    def __init__(
        self,
        llm: Any,
        *,
        instruction: str = LEAN_PROOF_INSTRUCTION,
        batch_size: int = 16,
        concurrency: int = 4,
        max_demo_chars: int | None = None,
    ) -> None:
        caps = getattr(llm, "capabilities", None)
        if caps is not None and not getattr(caps, "prompt_logprobs", False):
            raise CapabilityError(
                f"the {getattr(caps, 'backend', 'chosen')} backend cannot score continuations (no prompt log-probs)",
                hint="use the transformers or vLLM backend, or the offline proxy scorer (--scorer proxy)",
            )
        self.llm = llm
        self.instruction = instruction
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.max_demo_chars = max_demo_chars

    async def score(self, pairs: Sequence[Pair]) -> list[float]:
        """Mean per-token log-probability of each query's proof after the pair's prompt."""
        from malot.llm.base import GenerationRequest, SamplingParams

        requests = []
        for query, candidate in pairs:
            target = query.proof.strip("\n")
            if not target.strip():
                raise RetrievalError(f"query {query.name or query.statement[:40]!r} has no proof to score")
            requests.append(
                GenerationRequest(
                    prompt=feedback_prompt(query, candidate, self.instruction, self.max_demo_chars),
                    params=SamplingParams(max_tokens=1, temperature=0.0),
                    score_continuation="\n" + target,
                )
            )
        gate = asyncio.Semaphore(self.concurrency)

        async def run(chunk: list[Any]) -> list[Any]:
            async with gate:
                return list(await self.llm.generate(chunk))

        chunks = [requests[i : i + self.batch_size] for i in range(0, len(requests), self.batch_size)]
        results = [r for batch in await asyncio.gather(*(run(c) for c in chunks)) for r in batch]
        scores = []
        for result in results:
            logprobs = result.continuation_logprobs
            if not logprobs:
                raise RetrievalError("the LLM returned no continuation log-probs for a scoring request")
            scores.append(float(sum(logprobs)) / len(logprobs))
        return scores
