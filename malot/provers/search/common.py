"""What both searches share: limits, the outcome, hooks (confirm, budget, progress) and the tactic runner.

The tactic runner sends tactics through the shared :class:`~malot.provers.search.cache.TacticCache` to the proof
session and counts what it really sent. A session that is lost mid-search (its REPL crashed twice) turns the
tactic into an error edge: the search goes on (the REPL session re-pins a fresh process on its next call) or runs
out of open states and fails cleanly.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from malot.lean.session import ProofSession, ProofState, SessionLostError, TacticResult
from malot.provers.search.cache import TacticCache
from malot.provers.search.tree import SearchTree

__all__ = ["ConfirmFn", "ProgressFn", "SearchLimits", "SearchOutcome", "StopFn", "TacticRunner"]

#: Called with a found proof's tactics; True when the acceptance rule accepts the assembled proof.
ConfirmFn = Callable[[list[str]], Awaitable[bool]]
#: Called before each round; a reason (e.g. ``"tokens"``) stops the search.
StopFn = Callable[[], str | None]
#: Called after each round with live figures (expansions, open states, best score, tactic calls).
ProgressFn = Callable[[dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class SearchLimits:
    """Limits of one search: expansions (states expanded, or rollouts for RMaxTS), depth, wall time, width.

    ``width`` states (rollouts) are expanded concurrently, their policy calls batched; ``critic_weight`` scales a
    critic's score added to the cumulative log-probability.
    """

    max_expansions: int = 256
    max_depth: int = 64
    max_time_s: float | None = None
    width: int = 4
    critic_weight: float = 0.0


@dataclass(slots=True)
class SearchOutcome:
    """How a search ended: the proof's tactics (if one was found and confirmed), counts, and the tree."""

    proof: list[str] | None
    stopped: str
    expansions: int
    tactic_calls: int
    cache_hits: int
    tree: SearchTree
    rejected: int = 0
    policy_calls: int = 0
    samples: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    wall_s: float = 0.0
    session_errors: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def proved(self) -> bool:
        """A proof was found (and confirmed, when the search had a confirm hook)."""
        return self.proof is not None

    def stats(self) -> dict[str, Any]:
        """The counts as a dict (for ledgers, traces and results)."""
        return {
            "stopped": self.stopped,
            "expansions": self.expansions,
            "tactic_calls": self.tactic_calls,
            "cache_hits": self.cache_hits,
            "nodes": len(self.tree.nodes),
            "merges": self.tree.merges,
            "rejected": self.rejected,
            "policy_calls": self.policy_calls,
            "samples": self.samples,
            "session_errors": self.session_errors,
            "wall_s": round(self.wall_s, 4),
            **self.extra,
        }


class TacticRunner:
    """Runs tactics on a session through a cache; counts calls sent, cache hits and lost-session errors."""

    def __init__(self, session: ProofSession, cache: TacticCache | None = None, timeout: float | None = None) -> None:
        self.session = session
        self.cache = cache
        self.timeout = timeout
        self.calls = 0
        self.hits = 0
        self.session_errors = 0

    async def run(self, state: ProofState, tactic: str) -> TacticResult:
        """``tactic`` on ``state`` (once per state across the searches sharing the cache)."""

        async def call() -> TacticResult:
            self.calls += 1
            return await self.session.run_tactic(state, tactic, self.timeout)

        try:
            if self.cache is None:
                return await call()
            result, cached = await self.cache.run(state, tactic, call)  # a lost session is not cached
        except SessionLostError as exc:
            self.session_errors += 1
            return TacticResult(tactic=tactic, error=f"session lost: {exc}")
        if cached:
            self.hits += 1
        return result


def elapsed(started: float) -> float:
    """Seconds since ``started`` (``time.perf_counter``)."""
    return time.perf_counter() - started
