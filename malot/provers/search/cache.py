"""A proof-state cache shared by the concurrent searches of one problem: a tactic runs once per state.

Several samples (attempts) of one problem search the same proof session; when two of them try the same tactic on
the same state (equal normalised goals), :class:`TacticCache` runs it once and both get the result. A run that is
cancelled or raises is forgotten, so a waiter runs it itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from malot.lean.session import ProofState, TacticResult

__all__ = ["TacticCache"]


class TacticCache:
    """Results of ``(state, tactic)`` by normalised goals; ``hits`` counts tactic runs saved."""

    def __init__(self) -> None:
        self._results: dict[tuple[str, str], asyncio.Future[TacticResult]] = {}
        self.hits = 0
        self.runs = 0

    async def run(
        self, state: ProofState, tactic: str, call: Callable[[], Awaitable[TacticResult]]
    ) -> tuple[TacticResult, bool]:
        """The result of ``tactic`` on ``state`` (computed by ``await call()`` the first time) and whether cached."""
        key = (state.key, tactic.strip())
        while (future := self._results.get(key)) is not None:
            try:
                result = await asyncio.shield(future)
            except _Retry:
                continue
            self.hits += 1
            return result, True
        future = asyncio.get_running_loop().create_future()
        self._results[key] = future
        try:
            self.runs += 1
            result = await call()
        except BaseException:
            self._results.pop(key, None)
            future.set_exception(_Retry())
            future.exception()
            raise
        future.set_result(result)
        return result, False

    def __len__(self) -> int:
        return len(self._results)


class _Retry(Exception):
    """Internal: the run a waiter shared failed; the waiter runs the tactic itself."""
