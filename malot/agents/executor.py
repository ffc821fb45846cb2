"""The executor: runs many workflow attempts concurrently under resource limits, budgets and cancellation.

One :class:`Executor` is shared by everything a process runs (the CLI, an evaluation, the HTTP server). It owns

* a concurrency limit per resource (``{"llm": 32, "lean": 7}``): an agent holds its resource's slot while it runs;
* a run-wide :class:`~malot.agents.budget.BudgetMeter`, with a child meter per group (problem);
* first-success cancellation: when an attempt of a group succeeds, its siblings are cancelled, and no step of a
  cancelled attempt starts afterwards;
* per-attempt timeouts and the wall-time budget (``asyncio.timeout``);
* structured cancellation: attempts run in a task group, so cancelling a group cancels its attempts, and a
  cancelled agent's ``async with`` blocks clean up what it started;
* the trace sink that records every step.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from malot.agents.agent import RunContext
from malot.agents.budget import Budget, BudgetMeter
from malot.agents.messages import Message, Usage
from malot.agents.trace import TraceSink
from malot.agents.workflow import END, RouteView, Workflow
from malot.errors import MalotError

__all__ = ["AttemptResult", "AttemptStatus", "Executor", "GroupResult"]

AttemptStatus = Literal["success", "failed", "cancelled", "timeout", "budget", "error", "max_steps"]


@dataclass(slots=True)
class AttemptResult:
    """How one attempt ended. ``final`` is the last message it produced (``None`` if it produced none)."""

    attempt_id: str
    index: int
    status: AttemptStatus
    final: Message | None
    steps: int
    usage: Usage
    wall_s: float
    agent_s: float
    error: str | None = None
    reason: str | None = None
    history: list[Message] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        """Whether the attempt ended with a successful message."""
        return self.status == "success"


@dataclass(slots=True)
class GroupResult:
    """How a group (one problem's attempts) ended; ``success`` is the first successful attempt, if any."""

    group_id: str
    attempts: list[AttemptResult]
    success: AttemptResult | None
    wall_s: float
    usage: Usage
    stopped: str | None = None

    @property
    def solved(self) -> bool:
        """Whether any attempt succeeded."""
        return self.success is not None


class _Group:
    __slots__ = ("first_success", "group_id", "meter", "stopping", "success", "tasks")

    def __init__(self, group_id: str, meter: BudgetMeter, first_success: bool) -> None:
        self.group_id = group_id
        self.meter = meter
        self.first_success = first_success
        self.stopping = False
        self.success: AttemptResult | None = None
        self.tasks: list[asyncio.Task[AttemptResult]] = []

    def stop_siblings(self, winner: asyncio.Task[Any] | None) -> None:
        self.stopping = True
        for task in self.tasks:
            if task is not winner and not task.done():
                task.cancel()


class _Stop(Exception):
    """Internal: the group stopped before this attempt's next step."""


class Executor:
    """Runs workflow attempts concurrently; see the module docstring for what it enforces.

    ``limits`` maps resource names to slot counts (a resource not named is unlimited); ``budget`` limits the whole
    run; ``trace`` receives every event; ``attempt_timeout`` bounds each attempt in seconds; ``trace_messages``
    puts message contents (not only their types) into step events; ``raise_errors`` re-raises exceptions from
    agents instead of recording them as ``error`` attempts (useful in tests).
    """

    def __init__(
        self,
        *,
        limits: Mapping[str, int] | None = None,
        budget: Budget | None = None,
        trace: TraceSink | None = None,
        attempt_timeout: float | None = None,
        trace_messages: bool = True,
        raise_errors: bool = False,
    ) -> None:
        self.limits = dict(limits or {})
        for name, count in self.limits.items():
            if count < 1:
                raise MalotError(f"resource limit {name!r} must be at least 1, got {count}")
        self._slots = {name: asyncio.Semaphore(count) for name, count in self.limits.items()}
        self.meter = BudgetMeter(budget)
        self.trace = trace
        self.attempt_timeout = attempt_timeout
        self.trace_messages = trace_messages
        self.raise_errors = raise_errors

    async def __aenter__(self) -> Executor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Flush and close the trace sink."""
        if self.trace is not None:
            self.trace.close()

    def in_use(self, resource: str) -> int:
        """How many slots of ``resource`` are held right now."""
        sem = self._slots.get(resource)
        return 0 if sem is None else self.limits[resource] - sem._value

    async def run_group(
        self,
        workflow: Workflow,
        inputs: Sequence[Message],
        deps: Any = None,
        *,
        group_id: str | None = None,
        budget: Budget | None = None,
        first_success: bool = True,
        attempt_timeout: float | None = None,
    ) -> GroupResult:
        """Run one attempt per input message concurrently and wait for all of them (or the first success)."""
        gid = group_id or uuid.uuid4().hex[:12]
        group = _Group(gid, self.meter.child(budget), first_success)
        timeout = attempt_timeout if attempt_timeout is not None else self.attempt_timeout
        started = time.perf_counter()
        async with asyncio.TaskGroup() as tg:
            for index, message in enumerate(inputs):
                task = tg.create_task(self._run_attempt(workflow, group, index, message, deps, timeout))
                group.tasks.append(task)
        results = [
            self._never_started(workflow, gid, index) if task.cancelled() else task.result()
            for index, task in enumerate(group.tasks)
        ]
        wall = time.perf_counter() - started
        usage = _sum_usage(r.usage for r in results)
        stopped = next((r.reason for r in results if r.status == "budget"), None)
        if group.success is not None:
            stopped = "first_success" if group.first_success else None
        if self.trace is not None:
            self.trace.emit(
                {
                    "type": "group_finished",
                    "group_id": gid,
                    "time": time.time(),
                    "solved": group.success is not None,
                    "success_attempt": group.success.attempt_id if group.success else None,
                    "attempts": len(results),
                    "wall_s": wall,
                    "usage": usage.model_dump(),
                    "stopped": stopped,
                }
            )
        return GroupResult(gid, results, group.success, wall, usage, stopped)

    async def run_groups(
        self,
        workflow: Workflow,
        groups: Iterable[tuple[str, Sequence[Message]]],
        deps: Any = None,
        *,
        budget: Budget | None = None,
        first_success: bool = True,
        max_concurrent_groups: int | None = None,
    ) -> list[GroupResult]:
        """Run many groups concurrently (at most ``max_concurrent_groups`` at a time); results keep input order."""
        gate = asyncio.Semaphore(max_concurrent_groups) if max_concurrent_groups else None

        async def one(gid: str, inputs: Sequence[Message]) -> GroupResult:
            async with gate if gate is not None else contextlib.nullcontext():
                return await self.run_group(
                    workflow, inputs, deps, group_id=gid, budget=budget, first_success=first_success
                )

        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(one(gid, inputs)) for gid, inputs in groups]
        return [t.result() for t in tasks]

    def _never_started(self, workflow: Workflow, group_id: str, index: int) -> AttemptResult:
        """The result of an attempt cancelled by a sibling's success before its task first ran (traced too)."""
        result = AttemptResult(
            attempt_id=f"{group_id}/{index}",
            index=index,
            status="cancelled",
            final=None,
            steps=0,
            usage=Usage(),
            wall_s=0.0,
            agent_s=0.0,
            reason="a sibling attempt succeeded before this one started",
        )
        if self.trace is not None:
            now = time.time()
            base = {"group_id": group_id, "time": now, "attempt_id": result.attempt_id}
            self.trace.emit({"type": "attempt_started", **base, "index": index, "workflow": workflow.name})
            self.trace.emit(
                {
                    "type": "attempt_finished",
                    **base,
                    "status": "cancelled",
                    "steps": 0,
                    "wall_s": 0.0,
                    "agent_s": 0.0,
                    "usage": result.usage.model_dump(),
                    "error": None,
                    "reason": result.reason,
                }
            )
        return result

    async def _run_attempt(
        self,
        workflow: Workflow,
        group: _Group,
        index: int,
        message: Message,
        deps: Any,
        attempt_timeout: float | None,
    ) -> AttemptResult:
        attempt_id = f"{group.group_id}/{index}"
        ctx: RunContext[Any] = RunContext(
            deps=deps,
            group_id=group.group_id,
            attempt_id=attempt_id,
            meter=group.meter,
            emit=self.trace.emit if self.trace is not None else None,
        )
        ctx.history.append(message)
        counters = _Counters()
        started = time.perf_counter()
        if self.trace is not None:
            self.trace.emit(
                {
                    "type": "attempt_started",
                    "group_id": group.group_id,
                    "time": time.time(),
                    "attempt_id": attempt_id,
                    "index": index,
                    "workflow": workflow.name,
                }
            )
        wall_left = group.meter.remaining_wall_seconds()
        limit = attempt_timeout
        wall_is_budget = False
        if wall_left is not None and (limit is None or wall_left < limit):
            limit, wall_is_budget = max(wall_left, 0.0), True
        status: AttemptStatus
        final: Message | None = None
        error: str | None = None
        reason: str | None = None
        try:
            async with asyncio.timeout(limit):
                status, final, reason = await self._steps(workflow, group, ctx, message, counters)
        except TimeoutError:
            status = "budget" if wall_is_budget else "timeout"
            reason = "wall_seconds" if wall_is_budget else f"attempt timeout of {attempt_timeout}s"
        except _Stop:
            status, reason = "cancelled", "group stopped"
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not group.stopping or task is None or task.uncancel() > 0:
                raise
            status, reason = "cancelled", "a sibling attempt succeeded"
        except Exception as exc:
            if self.raise_errors:
                raise
            status, error = "error", f"{type(exc).__name__}: {exc}"
        if final is None and len(ctx.history) > 1:
            final = ctx.history[-1]
        result = AttemptResult(
            attempt_id=attempt_id,
            index=index,
            status=status,
            final=final,
            steps=ctx.step,
            usage=counters.usage(),
            wall_s=time.perf_counter() - started,
            agent_s=counters.agent_s,
            error=error,
            reason=reason,
            history=ctx.history,
        )
        if status == "success" and group.success is None:
            group.success = result
            if group.first_success:
                group.stop_siblings(asyncio.current_task())
        if self.trace is not None:
            self.trace.emit(
                {
                    "type": "attempt_finished",
                    "group_id": group.group_id,
                    "time": time.time(),
                    "attempt_id": attempt_id,
                    "status": status,
                    "steps": result.steps,
                    "wall_s": result.wall_s,
                    "agent_s": result.agent_s,
                    "usage": result.usage.model_dump(),
                    "error": error,
                    "reason": reason,
                }
            )
        return result

    async def _steps(
        self,
        workflow: Workflow,
        group: _Group,
        ctx: RunContext[Any],
        message: Message,
        counters: _Counters,
    ) -> tuple[AttemptStatus, Message | None, str | None]:
        node = workflow.start
        agents = workflow.agents
        meter = group.meter
        slots = self._slots
        trace = self.trace
        while True:
            if group.stopping:
                raise _Stop
            if ctx.step >= workflow.max_steps:
                return "max_steps", message, f"stopped after {workflow.max_steps} steps"
            agent = agents[node]
            resource = agent.resource
            reserved = agent.estimate(message).samples
            refused = meter.try_reserve(reserved, resource)
            if refused is not None:
                return "budget", message, refused
            ctx.node = node
            ctx.visits[node] += 1
            began = time.perf_counter()
            try:
                sem = slots.get(resource) if resource is not None else None
                if sem is None:
                    output = await agent.run(message, ctx)
                else:
                    async with sem:
                        if group.stopping:
                            raise _Stop
                        late = meter.blocked(resource)  # spent while this step waited for its slot
                        if late is not None:
                            meter.settle(reserved, Usage())
                            return "budget", message, late
                        output = await agent.run(message, ctx)
            except BaseException:
                meter.settle(reserved, Usage())
                raise
            duration = time.perf_counter() - began
            counters.add(output.usage, duration)
            meter.settle(reserved, output.usage)
            ctx.history.append(output)
            if trace is not None:
                self._emit_step(ctx, node, message, output, duration)
            ctx.step += 1
            nxt = workflow.route(node, output, RouteView(ctx.visits, ctx.step))
            if nxt == END:
                return ("success" if output.succeeded else "failed"), output, None
            node, message = nxt, output

    def _emit_step(self, ctx: RunContext[Any], node: str, message: Message, output: Message, duration: float) -> None:
        assert self.trace is not None
        event: dict[str, Any] = {
            "type": "step",
            "group_id": ctx.group_id,
            "time": time.time(),
            "attempt_id": ctx.attempt_id,
            "step": ctx.step,
            "node": node,
            "input_type": type(message).__name__,
            "output_type": type(output).__name__,
            "outcome": output.outcome,
            "duration_s": duration,
            "usage": output.usage.model_dump(),
        }
        if self.trace_messages:
            event["input"] = message.summary()
            event["output"] = output.summary()
        if ctx.events:
            event["notes"] = ctx.events
            ctx.events = []
        self.trace.emit(event)


class _Counters:
    __slots__ = ("agent_s", "lean", "llm_calls", "samples", "tokens_in", "tokens_out")

    def __init__(self) -> None:
        self.samples = 0
        self.tokens_in = 0
        self.tokens_out = 0
        self.lean = 0.0
        self.llm_calls = 0
        self.agent_s = 0.0

    def add(self, usage: Usage, duration: float) -> None:
        self.samples += usage.samples
        self.tokens_in += usage.tokens_in
        self.tokens_out += usage.tokens_out
        self.lean += usage.lean_cpu_seconds
        self.llm_calls += usage.llm_calls
        self.agent_s += duration

    def usage(self) -> Usage:
        return Usage(
            samples=self.samples,
            tokens_in=self.tokens_in,
            tokens_out=self.tokens_out,
            lean_cpu_seconds=self.lean,
            llm_calls=self.llm_calls,
        )


def _sum_usage(usages: Iterable[Usage]) -> Usage:
    total = Usage()
    for u in usages:
        total = total + u
    return total
