"""Scripted agents for core tests: a prover, a verifier and a corrector whose behaviour the test chooses."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from malot.agents import (
    END,
    Agent,
    Edge,
    LeanCandidate,
    Message,
    RunContext,
    Task,
    Usage,
    VerifierFeedback,
    Workflow,
)


class ScriptedProver(Agent[Task, LeanCandidate]):
    """Draws one sample per step; the candidate's code is ``proof-<attempt>``."""

    role = "prover"
    resource = "llm"

    def __init__(self, delay: float = 0.0, log: list[tuple[str, str, float]] | None = None) -> None:
        self.delay = delay
        self.log = log

    def estimate(self, message: Task) -> Usage:
        return Usage(samples=1)

    async def run(self, message: Task, ctx: RunContext[Any]) -> LeanCandidate:
        if self.log is not None:
            self.log.append((ctx.attempt_id, self.role, asyncio.get_running_loop().time()))
        if self.delay:
            await asyncio.sleep(self.delay)
        return LeanCandidate(code=f"proof-{ctx.attempt_id}", usage=Usage(samples=1, tokens_in=10, tokens_out=5))


class ScriptedVerifier(Agent[LeanCandidate, VerifierFeedback]):
    """Accepts a candidate when ``accept(candidate, ctx)`` says so."""

    role = "verifier"
    resource = "lean"

    def __init__(
        self,
        accept: Callable[[LeanCandidate, RunContext[Any]], bool],
        delay: float = 0.0,
        log: list[tuple[str, str, float]] | None = None,
    ) -> None:
        self.accept = accept
        self.delay = delay
        self.log = log

    async def run(self, message: LeanCandidate, ctx: RunContext[Any]) -> VerifierFeedback:
        if self.log is not None:
            self.log.append((ctx.attempt_id, self.role, asyncio.get_running_loop().time()))
        if self.delay:
            await asyncio.sleep(self.delay)
        ok = self.accept(message, ctx)
        return VerifierFeedback(
            outcome="verified" if ok else "failed",
            candidate=message,
            errors=[] if ok else ["type mismatch"],
            usage=Usage(lean_cpu_seconds=0.5),
        )


class ScriptedCorrector(Agent[VerifierFeedback, LeanCandidate]):
    """Draws one sample per correction; the new candidate records its round."""

    role = "corrector"
    resource = "llm"

    def __init__(self, delay: float = 0.0, log: list[tuple[str, str, float]] | None = None) -> None:
        self.delay = delay
        self.log = log

    def estimate(self, message: VerifierFeedback) -> Usage:
        return Usage(samples=1)

    async def run(self, message: VerifierFeedback, ctx: RunContext[Any]) -> LeanCandidate:
        if self.log is not None:
            self.log.append((ctx.attempt_id, self.role, asyncio.get_running_loop().time()))
        if self.delay:
            await asyncio.sleep(self.delay)
        return LeanCandidate(
            code=f"fixed-{ctx.attempt_id}-{ctx.visits['corrector']}",
            round=message.candidate.round + 1,
            usage=Usage(samples=1, tokens_in=20, tokens_out=5),
        )


def prove_correct_loop(
    accept: Callable[[LeanCandidate, RunContext[Any]], bool],
    *,
    rounds: int = 2,
    delay: float = 0.0,
    log: list[tuple[str, str, float]] | None = None,
) -> Workflow:
    """prover -> verifier -> (verified: END | failed: corrector, at most ``rounds`` times | else END)."""

    def may_correct(message: Message, view: Any) -> bool:
        return message.outcome == "failed" and view.visits["corrector"] < rounds

    return Workflow(
        "prove-verify-correct",
        [
            ScriptedProver(delay, log),
            ScriptedVerifier(accept, delay, log),
            ScriptedCorrector(delay, log),
        ],
        [
            ("prover", "verifier"),
            Edge("verifier", END, "verified"),
            Edge("verifier", "corrector", may_correct),
            Edge("verifier", END),
            ("corrector", "verifier"),
        ],
    )
