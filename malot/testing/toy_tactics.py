"""A toy tactic environment: a deterministic goal-rewriting system, a test double of the proof-session interface.

It stands in for Lean where the search itself is under test (no Lean runs here). A state is a tuple of goals
(strings); a tactic rewrites the *first* goal by a rule: ``rules[goal][tactic]`` is the list of goals replacing it
(``[]`` closes it) or a :class:`ToyError` (the tactic fails). Unknown tactics fail with ``unknown tactic``. The
rest of the goals stay, as in Lean. :meth:`ToyTacticEnv.start` opens the goal named by the code (``theorem_goals``
maps code to a goal, else the stripped code itself is the goal).

Every tactic call is recorded (:attr:`ToyTacticEnv.calls`); ``gate`` (an :class:`asyncio.Event`) makes every tactic
wait until it is set, so tests can hold tactics in flight and cancel the search; ``latency`` awaits that many
seconds per tactic (benchmarks).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from malot.lean.session import ProofState, SessionUnsupportedError, TacticResult
from malot.resources import AsyncResource

__all__ = ["ToyError", "ToyTacticEnv"]


@dataclass(frozen=True, slots=True)
class ToyError:
    """A rule outcome: the tactic fails with ``message``."""

    message: str = "tactic failed"


Rule = Sequence[str] | ToyError


class ToyTacticEnv(AsyncResource):
    """The toy goal-rewriting system as a :class:`~malot.lean.session.ProofSession` (see the module docstring)."""

    backend = "toy"
    supports_pickle = False

    def __init__(
        self,
        rules: Mapping[str, Mapping[str, Rule]],
        *,
        theorem_goals: Mapping[str, str] | None = None,
        gate: asyncio.Event | None = None,
        latency: float = 0.0,
    ) -> None:
        self.rules = {goal: dict(tactics) for goal, tactics in rules.items()}
        self.theorem_goals = dict(theorem_goals or {})
        self.gate = gate
        self.latency = latency
        self.calls: list[tuple[tuple[str, ...], str]] = []
        self.in_flight = 0
        self.closed = False
        self._states: dict[int, tuple[str, ...]] = {}
        self._arrived: asyncio.Event | None = None

    async def wait_in_flight(self, count: int) -> None:
        """Wait until ``count`` tactics are in flight at once (held by ``gate``)."""
        while self.in_flight < count:
            self._arrived = asyncio.Event()
            await self._arrived.wait()

    async def aclose(self) -> None:
        """Mark the environment closed."""
        self.closed = True

    def _state(self, goals: tuple[str, ...]) -> ProofState:
        handle = len(self._states)
        self._states[handle] = goals
        return ProofState(id=handle, goals=goals)

    async def start(self, code: str, *, header: str = "") -> list[ProofState]:
        """One state: the goal ``theorem_goals[code]`` (or ``code`` itself)."""
        goal = self.theorem_goals.get(code, code.strip())
        return [self._state((goal,))]

    async def run_tactic(self, state: ProofState, tactic: str, timeout: float | None = None) -> TacticResult:  # noqa: ASYNC109
        """Rewrite the first goal of ``state`` by the rule for ``tactic``."""
        goals = self._states.get(state.id)
        if goals is None:
            return TacticResult(tactic=tactic, error="Unknown proof state.")
        self.calls.append((goals, tactic))
        self.in_flight += 1
        if self._arrived is not None:
            self._arrived.set()
        try:
            if self.gate is not None:
                await self.gate.wait()
            if self.latency:
                await asyncio.sleep(self.latency)
        finally:
            self.in_flight -= 1
        if not goals:
            return TacticResult(tactic=tactic, error="no goals to be proved")
        rule = self.rules.get(goals[0], {}).get(tactic.strip())
        if rule is None:
            return TacticResult(tactic=tactic, error="unknown tactic")
        if isinstance(rule, ToyError):
            return TacticResult(tactic=tactic, error=rule.message)
        new = (*rule, *goals[1:])
        return TacticResult(tactic=tactic, state=self._state(new), status="Completed" if not new else None)

    async def pickle_state(self, state: ProofState, path: str) -> None:
        """Not supported by the toy."""
        raise SessionUnsupportedError("the toy tactic environment cannot pickle states")

    async def unpickle_state(self, path: str) -> ProofState:
        """Not supported by the toy."""
        raise SessionUnsupportedError("the toy tactic environment cannot pickle states")
