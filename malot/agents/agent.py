"""Agents: async components with a role, a prompt template, typed input and output, and a typed run context.

An agent never imports a backend. What it may use (an LLM, a verifier, a retriever, tools) arrives in
``ctx.deps``, whose type the strategy chooses, the way pydantic-ai passes dependencies.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, get_args, get_origin

from malot.agents.budget import BudgetMeter
from malot.agents.messages import Message, Usage
from malot.errors import WorkflowError

__all__ = ["Agent", "FunctionAgent", "PromptTemplate", "RunContext", "function_agent"]

InT = TypeVar("InT", bound=Message)
OutT = TypeVar("OutT", bound=Message)
DepsT = TypeVar("DepsT")

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


class PromptTemplate:
    """A prompt with ``{{name}}`` placeholders.

    Double braces keep Lean's and LaTeX's single braces literal. Rendering with a missing variable is an error that
    names it, so a template and its agent cannot drift apart silently.
    """

    __slots__ = ("text", "variables")

    def __init__(self, text: str) -> None:
        self.text = text
        self.variables = frozenset(_PLACEHOLDER.findall(text))

    def render(self, **values: object) -> str:
        """Fill every placeholder; raise :class:`WorkflowError` naming the ones without a value."""
        missing = self.variables - values.keys()
        if missing:
            raise WorkflowError(f"prompt template needs values for {', '.join(sorted(missing))}")
        return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), self.text)

    def __repr__(self) -> str:
        return f"PromptTemplate({self.text[:40]!r}...)"


@dataclass(slots=True)
class RunContext(Generic[DepsT]):
    """What an agent sees while it runs one step of one attempt."""

    deps: DepsT
    group_id: str
    attempt_id: str
    meter: BudgetMeter
    step: int = 0
    node: str = ""
    history: list[Message] = field(default_factory=list)
    visits: Counter[str] = field(default_factory=Counter)
    state: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    emit: Callable[[dict[str, Any]], None] | None = None

    def note(self, **data: Any) -> None:
        """Attach extra data (e.g. per-step fusion weights) to this step's trace event."""
        self.events.append(data)

    def publish(self, **data: Any) -> None:
        """Send live progress now (a ``note`` event of the group, with this attempt and node), while the step runs;
        a no-op when the executor has no trace sink."""
        if self.emit is not None:
            self.emit(
                {
                    "type": "note",
                    "group_id": self.group_id,
                    "time": time.time(),
                    "data": {"attempt_id": self.attempt_id, "node": self.node, **data},
                }
            )


class Agent(Generic[InT, OutT]):
    """Base class of agents. Subclass with concrete types, ``Agent[Task, LeanCandidate]``, and define :meth:`run`.

    Attributes (class-level defaults, instances may override): ``role`` names the agent and its workflow node;
    ``resource`` names the concurrency slot the executor holds while it runs (``"llm"``, ``"lean"`` or ``None``);
    ``prompt`` is its :class:`PromptTemplate`, if it talks to a model; ``input_type`` and ``output_type`` are taken
    from the generic parameters and checked along workflow edges.
    """

    role: str = "agent"
    resource: str | None = None
    prompt: PromptTemplate | None = None
    input_type: type[Message] = Message
    output_type: type[Message] = Message

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for base in getattr(cls, "__orig_bases__", ()):
            if get_origin(base) is Agent:
                args = get_args(base)
                if len(args) == 2 and all(isinstance(a, type) for a in args):
                    cls.input_type, cls.output_type = args

    def estimate(self, message: InT) -> Usage:
        """Compute this step will reserve before it runs; only ``samples`` is reserved exactly."""
        return _NO_USAGE

    async def run(self, message: InT, ctx: RunContext[Any]) -> OutT:
        """Do one step: read ``message``, use ``ctx.deps``, return the next message."""
        raise NotImplementedError(f"agent {type(self).__name__} must define run()")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} role={self.role!r}>"


_NO_USAGE = Usage()


class FunctionAgent(Agent[Message, Message]):
    """An agent made from an async function; handy for scripted agents and small glue steps."""

    def __init__(
        self,
        fn: Callable[[Any, RunContext[Any]], Awaitable[Message]],
        *,
        role: str,
        resource: str | None = None,
        samples: int = 0,
        input_type: type[Message] = Message,
        output_type: type[Message] = Message,
    ) -> None:
        self._fn = fn
        self.role = role
        self.resource = resource
        self.input_type = input_type
        self.output_type = output_type
        self._estimate = Usage(samples=samples) if samples else _NO_USAGE

    def estimate(self, message: Message) -> Usage:
        return self._estimate

    async def run(self, message: Message, ctx: RunContext[Any]) -> Message:
        return await self._fn(message, ctx)


def function_agent(
    role: str,
    *,
    resource: str | None = None,
    samples: int = 0,
    input_type: type[Message] = Message,
    output_type: type[Message] = Message,
) -> Callable[[Callable[[Any, RunContext[Any]], Awaitable[Message]]], FunctionAgent]:
    """Decorator: turn ``async def step(message, ctx) -> Message`` into a :class:`FunctionAgent`."""

    def wrap(fn: Callable[[Any, RunContext[Any]], Awaitable[Message]]) -> FunctionAgent:
        return FunctionAgent(
            fn, role=role, resource=resource, samples=samples, input_type=input_type, output_type=output_type
        )

    return wrap
