"""Budgets: limits on samples, tokens, Lean CPU-seconds and wall time, and the meters that enforce them.

A :class:`Budget` is a plain value. A :class:`BudgetMeter` spends one; meters nest (a problem's meter has the run's
meter as parent) and every charge is applied to the whole chain. Samples are *reserved* before a step runs (the
agent says what it will draw), so a sample budget is never overshot even with many attempts in flight; tokens and
Lean time are known only afterwards, so once they are spent no new step starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from malot.agents.messages import Usage

__all__ = ["Budget", "BudgetMeter"]


class Budget(BaseModel):
    """Limits on the work one scope may spend; ``None`` means unlimited."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    samples: int | None = Field(None, ge=0)
    tokens: int | None = Field(None, ge=0)
    lean_cpu_seconds: float | None = Field(None, ge=0)
    wall_seconds: float | None = Field(None, gt=0)


class BudgetMeter:
    """Tracks what a scope has spent against its :class:`Budget` and its parents' budgets."""

    __slots__ = (
        "_clock",
        "_deadline",
        "budget",
        "lean_cpu_seconds",
        "parent",
        "samples",
        "started",
        "tokens",
    )

    def __init__(
        self,
        budget: Budget | None = None,
        *,
        parent: BudgetMeter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.budget = budget or Budget()
        self.parent = parent
        self._clock = clock
        self.started = clock()
        self._deadline = self.started + self.budget.wall_seconds if self.budget.wall_seconds else None
        self.samples = 0
        self.tokens = 0
        self.lean_cpu_seconds = 0.0

    def child(self, budget: Budget | None = None) -> BudgetMeter:
        """A nested meter whose spending also counts against this one."""
        return BudgetMeter(budget, parent=self, clock=self._clock)

    @property
    def spent(self) -> Usage:
        """What this scope has spent so far (tokens are reported as tokens out)."""
        return Usage(samples=self.samples, tokens_out=self.tokens, lean_cpu_seconds=self.lean_cpu_seconds)

    def exhausted(self) -> str | None:
        """The name of the first spent limit in the chain, or ``None`` while work may continue."""
        meter: BudgetMeter | None = self
        while meter is not None:
            b = meter.budget
            if b.samples is not None and meter.samples >= b.samples:
                return "samples"
            if b.tokens is not None and meter.tokens >= b.tokens:
                return "tokens"
            if b.lean_cpu_seconds is not None and meter.lean_cpu_seconds >= b.lean_cpu_seconds:
                return "lean_cpu_seconds"
            if meter._deadline is not None and meter._clock() >= meter._deadline:
                return "wall_seconds"
            meter = meter.parent
        return None

    def try_reserve(self, samples: int, resource: str | None = None) -> str | None:
        """Reserve ``samples`` in the whole chain before a step that uses ``resource`` runs.

        Returns ``None`` on success, or the name of the limit that forbids the step (nothing is reserved then).
        Spent tokens stop steps on the ``"llm"`` resource, spent Lean time stops steps on ``"lean"``, and a passed
        deadline stops every step; so a candidate already drawn can still be verified when the samples are spent.
        """
        meter: BudgetMeter | None = self
        while meter is not None:
            b = meter.budget
            if samples and b.samples is not None and meter.samples + samples > b.samples:
                return "samples"
            if resource == "llm":
                if b.samples is not None and meter.samples >= b.samples:
                    return "samples"
                if b.tokens is not None and meter.tokens >= b.tokens:
                    return "tokens"
            if resource == "lean" and b.lean_cpu_seconds is not None and meter.lean_cpu_seconds >= b.lean_cpu_seconds:
                return "lean_cpu_seconds"
            if meter._deadline is not None and meter._clock() >= meter._deadline:
                return "wall_seconds"
            meter = meter.parent
        if samples:
            meter = self
            while meter is not None:
                meter.samples += samples
                meter = meter.parent
        return None

    def blocked(self, resource: str | None) -> str | None:
        """The limit that forbids starting a step on ``resource`` now, without reserving anything.

        Checked again once a step holds its concurrency slot: tokens and Lean time spent while it waited for the
        slot stop it too, so the overshoot is bounded by the steps that are running, not by those queued.
        """
        meter: BudgetMeter | None = self
        while meter is not None:
            b = meter.budget
            if resource == "llm" and b.tokens is not None and meter.tokens >= b.tokens:
                return "tokens"
            if resource == "lean" and b.lean_cpu_seconds is not None and meter.lean_cpu_seconds >= b.lean_cpu_seconds:
                return "lean_cpu_seconds"
            if meter._deadline is not None and meter._clock() >= meter._deadline:
                return "wall_seconds"
            meter = meter.parent
        return None

    def settle(self, reserved_samples: int, usage: Usage) -> None:
        """Replace a reservation by what the step really spent."""
        delta_samples = usage.samples - reserved_samples
        tokens = usage.tokens
        lean = usage.lean_cpu_seconds
        meter: BudgetMeter | None = self
        while meter is not None:
            meter.samples += delta_samples
            meter.tokens += tokens
            meter.lean_cpu_seconds += lean
            meter = meter.parent

    def remaining_wall_seconds(self) -> float | None:
        """Seconds until the nearest wall-time deadline in the chain, or ``None`` when there is none."""
        now = self._clock()
        remaining: float | None = None
        meter: BudgetMeter | None = self
        while meter is not None:
            if meter._deadline is not None:
                left = meter._deadline - now
                remaining = left if remaining is None else min(remaining, left)
            meter = meter.parent
        return remaining
