"""Traces: every agent step as a typed event, written as JSON lines, and a reader that rebuilds the attempt tree.

Events: ``attempt_started``, ``step``, ``attempt_finished``, ``group_finished`` (plus free ``note`` events).
A trace file holds the events of one or many groups (a group is one problem: its attempts run together and the
first success may cancel the rest). :func:`read_trace` turns a file back into groups, attempts and steps.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from malot.agents.messages import Usage
from malot.errors import MalotError

__all__ = [
    "AttemptFinished",
    "AttemptStarted",
    "AttemptTrace",
    "GroupFinished",
    "GroupTrace",
    "JsonlTraceWriter",
    "MemoryTrace",
    "NoteEvent",
    "StepEvent",
    "Trace",
    "TraceEvent",
    "TraceSink",
    "read_trace",
]


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    group_id: str
    time: float = Field(default_factory=time.time)


class AttemptStarted(_Event):
    """An attempt began; ``parent_id`` links attempts spawned from another one."""

    type: Literal["attempt_started"] = "attempt_started"
    attempt_id: str
    index: int
    parent_id: str | None = None
    workflow: str = ""


class StepEvent(_Event):
    """One agent step: which node, what went in and came out, how long it took and what it spent."""

    type: Literal["step"] = "step"
    attempt_id: str
    step: int
    node: str
    input_type: str
    output_type: str
    outcome: str
    duration_s: float
    usage: Usage = Field(default_factory=Usage)
    input: dict[str, Any] | None = None
    output: dict[str, Any] | None = None
    notes: list[dict[str, Any]] = Field(default_factory=list)


class AttemptFinished(_Event):
    """An attempt ended with ``status`` (success, failed, cancelled, timeout, budget, error, max_steps)."""

    type: Literal["attempt_finished"] = "attempt_finished"
    attempt_id: str
    status: str
    steps: int
    wall_s: float
    agent_s: float
    usage: Usage = Field(default_factory=Usage)
    error: str | None = None
    reason: str | None = None


class GroupFinished(_Event):
    """All attempts of a group ended."""

    type: Literal["group_finished"] = "group_finished"
    solved: bool
    success_attempt: str | None = None
    attempts: int
    wall_s: float
    usage: Usage = Field(default_factory=Usage)
    stopped: str | None = None


class NoteEvent(_Event):
    """Free-form data a strategy attaches to a group (e.g. the problem it is proving)."""

    type: Literal["note"] = "note"
    data: dict[str, Any] = Field(default_factory=dict)


TraceEvent = Annotated[
    AttemptStarted | StepEvent | AttemptFinished | GroupFinished | NoteEvent, Field(discriminator="type")
]
_EVENT_ADAPTER: TypeAdapter[TraceEvent] = TypeAdapter(TraceEvent)


class TraceSink(Protocol):
    """Where the executor sends trace events (plain dicts in the shape of the event models)."""

    def emit(self, event: dict[str, Any]) -> None:
        """Record one event."""

    def close(self) -> None:
        """Flush and release resources."""


class MemoryTrace:
    """A sink that keeps events in memory, for tests and for callers that want the trace as objects."""

    def __init__(self) -> None:
        self.raw: list[dict[str, Any]] = []

    def emit(self, event: dict[str, Any]) -> None:
        self.raw.append(event)

    def close(self) -> None:
        return None

    @property
    def events(self) -> list[TraceEvent]:
        """The recorded events, validated into their models."""
        return [_EVENT_ADAPTER.validate_python(e) for e in self.raw]

    def tree(self) -> Trace:
        """The attempt tree of what was recorded."""
        return Trace.from_events(self.events)


class JsonlTraceWriter:
    """A sink that appends events to a JSON-lines file, flushing every ``flush_every`` events and on close."""

    def __init__(self, path: str | Path, *, flush_every: int = 64) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = self.path.open("a", encoding="utf-8")
        self._pending = 0
        self._flush_every = flush_every

    def emit(self, event: dict[str, Any]) -> None:
        if self._file is None:
            raise MalotError(f"trace file {self.path} is closed")
        self._file.write(json.dumps(event, ensure_ascii=False, default=str) + "\n")
        self._pending += 1
        if self._pending >= self._flush_every:
            self._file.flush()
            self._pending = 0

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> JsonlTraceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class AttemptTrace:
    """One attempt rebuilt from a trace: its steps in order, its end, and attempts spawned from it."""

    attempt_id: str
    index: int
    parent_id: str | None = None
    steps: list[StepEvent] = field(default_factory=list)
    finished: AttemptFinished | None = None
    children: list[AttemptTrace] = field(default_factory=list)

    @property
    def status(self) -> str:
        """The attempt's final status, or ``"unfinished"`` if the trace stops before its end."""
        return self.finished.status if self.finished else "unfinished"

    @property
    def overhead_s(self) -> float | None:
        """Wall time not spent inside agents: the framework's own cost for this attempt."""
        if self.finished is None:
            return None
        return max(0.0, self.finished.wall_s - self.finished.agent_s)


@dataclass
class GroupTrace:
    """The attempts of one group (one problem), and how the group ended."""

    group_id: str
    attempts: dict[str, AttemptTrace] = field(default_factory=dict)
    finished: GroupFinished | None = None
    notes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def roots(self) -> list[AttemptTrace]:
        """Attempts with no parent, in start order."""
        return [a for a in self.attempts.values() if a.parent_id is None]


@dataclass
class Trace:
    """A whole trace: groups by id, each with its attempt tree."""

    groups: dict[str, GroupTrace] = field(default_factory=dict)

    @classmethod
    def from_events(cls, events: Iterable[TraceEvent]) -> Trace:
        """Rebuild the tree from events in file order."""
        trace = cls()
        for event in events:
            group = trace.groups.setdefault(event.group_id, GroupTrace(event.group_id))
            if isinstance(event, AttemptStarted):
                attempt = AttemptTrace(event.attempt_id, event.index, event.parent_id)
                group.attempts[event.attempt_id] = attempt
                if event.parent_id and event.parent_id in group.attempts:
                    group.attempts[event.parent_id].children.append(attempt)
            elif isinstance(event, StepEvent):
                _attempt(group, event.attempt_id).steps.append(event)
            elif isinstance(event, AttemptFinished):
                _attempt(group, event.attempt_id).finished = event
            elif isinstance(event, GroupFinished):
                group.finished = event
            else:
                group.notes.append(event.data)
        return trace

    def summary(self) -> dict[str, Any]:
        """Counts and timings over the whole trace, including the framework overhead per attempt."""
        attempts = [a for g in self.groups.values() for a in g.attempts.values()]
        overheads = [a.overhead_s for a in attempts if a.overhead_s is not None]
        return {
            "groups": len(self.groups),
            "solved": sum(1 for g in self.groups.values() if g.finished and g.finished.solved),
            "attempts": len(attempts),
            "steps": sum(len(a.steps) for a in attempts),
            "mean_overhead_ms_per_attempt": 1000 * sum(overheads) / len(overheads) if overheads else 0.0,
        }


def _attempt(group: GroupTrace, attempt_id: str) -> AttemptTrace:
    if attempt_id not in group.attempts:
        group.attempts[attempt_id] = AttemptTrace(attempt_id, len(group.attempts))
    return group.attempts[attempt_id]


def iter_events(path: str | Path) -> Iterator[TraceEvent]:
    """Yield the events of a trace file; a malformed line is an error naming the file and line."""
    with Path(path).open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield _EVENT_ADAPTER.validate_json(line)
            except ValidationError as exc:
                raise MalotError(
                    f"trace file {path}, line {lineno}: not a malot trace event ({exc.errors()[0]['msg']})",
                    hint="pass a file written by malot's trace writer",
                ) from None


def read_trace(path: str | Path) -> Trace:
    """Read a JSON-lines trace file back into its attempt tree."""
    return Trace.from_events(iter_events(path))
