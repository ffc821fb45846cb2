"""The function-calling loop: a model that calls tools until it answers, run as a workflow on the executor.

:class:`ToolAgent` is a two-node :class:`~malot.agents.Workflow`: ``model`` (one LLM turn, offered the tools'
function schemas) and ``tools`` (runs the calls of that turn concurrently and appends their results as ``tool``
turns). ``model -> tools`` when the turn asked for calls, ``model -> END`` when it answered, ``tools -> model``.
So everything the executor gives a workflow holds for the loop: budgets (each turn reserves a sample; tokens,
Lean CPU-seconds and the wall clock are charged), ``max_steps``, cancellation (a cancelled run cancels its running
calls; process-isolated tools are killed), concurrency slots (``llm`` and ``tools``) and traces (every call is a
``note`` event as it finishes, and a note of its ``tools`` step: tool, arguments digest, duration, result size,
error).

A call's problems go back to the model as the call's result, so it can correct itself: arguments that are not JSON,
an unknown tool, arguments the tool's input model rejects, a tool that raised or timed out, no calls left. Results
longer than ``max_result_chars`` are written to a file and the model gets the path, the size and a preview.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from malot.agents.agent import Agent, RunContext
from malot.agents.budget import Budget
from malot.agents.executor import Executor
from malot.agents.messages import Message, Task, Usage
from malot.agents.tool_source import ToolCallError, ToolErrorKind, ToolSource, ToolSpec
from malot.agents.workflow import END, Edge, Workflow
from malot.errors import MalotError, ToolError
from malot.llm.base import ChatMessage, GenerationRequest, SamplingParams, ToolCall

__all__ = [
    "LOOP_STATE_KEY",
    "ModelTurnAgent",
    "ProgressCallback",
    "ToolAgent",
    "ToolBox",
    "ToolCallRecord",
    "ToolCallsAgent",
    "ToolConversation",
    "ToolLoopDeps",
    "ToolRunResult",
    "loop_deps",
]

#: ``progress(kind, data)``: ``turn`` after each model turn, ``call_started`` and ``call_finished`` around calls.
ProgressCallback = Callable[[str, dict[str, Any]], None]


class ToolCallRecord(BaseModel):
    """One executed (or refused) tool call, as traced: no arguments or results inline, only digests and sizes."""

    model_config = ConfigDict(frozen=True)

    id: str
    tool: str
    source: str = ""
    arguments_sha256: str
    arguments_chars: int
    duration_s: float
    result_chars: int = 0
    error: str | None = None
    error_kind: ToolErrorKind | None = None
    result_file: str | None = None
    turn: int = 0


class ToolConversation(Message):
    """The loop's state between steps: the chat so far, the calls awaiting results, the answer once given.

    Outcomes: ``tool_calls`` (the model asked for calls), ``tool_results`` (they ran), ``answer`` (success).
    """

    success_outcomes: ClassVar[frozenset[str]] = frozenset({"answer"})

    messages: tuple[ChatMessage, ...] = ()
    pending: tuple[ToolCall, ...] = ()
    answer: str = ""
    turns: int = 0
    calls_made: int = 0
    records: tuple[ToolCallRecord, ...] = ()

    def summary(self) -> dict[str, Any]:
        last = self.messages[-1] if self.messages else None
        return {
            "outcome": self.outcome,
            "turns": self.turns,
            "calls_made": self.calls_made,
            "pending": [c.name for c in self.pending],
            "answer": self.answer[:2000],
            "last": last.content[:500] if last is not None else "",
        }


@dataclass(slots=True)
class _Entry:
    spec: ToolSpec
    source: ToolSource


class ToolBox:
    """The tools one run may call, gathered from its sources (the first source offering a name wins).

    A source that cannot list its tools (a dead or hanging MCP server) is left out and named in ``unavailable``;
    the run goes on with the others.
    """

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._schemas: list[dict[str, Any]] | None = None
        self.unavailable: dict[str, str] = {}

    @classmethod
    async def gather(
        cls, sources: Sequence[ToolSource], *, only: Sequence[str] | None = None, list_timeout: float = 30.0
    ) -> ToolBox:
        """List every source's tools concurrently (each within ``list_timeout`` seconds); keep ``only`` if given."""
        box = cls()

        async def listing(source: ToolSource) -> list[ToolSpec] | str:
            try:
                async with asyncio.timeout(list_timeout):
                    return await source.list_tools()
            except TimeoutError:
                return f"listing its tools took longer than {list_timeout} s"
            except Exception as exc:
                return f"{type(exc).__name__}: {exc}"

        listings = await asyncio.gather(*(listing(s) for s in sources))
        for source, listed in zip(sources, listings, strict=True):
            if isinstance(listed, str):
                box.unavailable[source.name] = listed
                continue
            for spec in listed:
                if only is not None and spec.name not in only:
                    continue
                box._entries.setdefault(spec.name, _Entry(spec, source))
        if only is not None:
            missing = [n for n in only if n not in box._entries]
            if missing:
                raise ToolError(
                    f"no tool named {', '.join(repr(n) for n in missing)} in the tool sources",
                    hint=f"available: {', '.join(sorted(box.names())) or 'none'} (see 'malot tools list')",
                )
        return box

    @classmethod
    def of(cls, source: ToolSource, specs: Sequence[ToolSpec]) -> ToolBox:
        """A toolbox of ``specs`` served by ``source`` (when the specs are known without asking the source)."""
        box = cls()
        for spec in specs:
            box._entries.setdefault(spec.name, _Entry(spec, source))
        return box

    def names(self) -> list[str]:
        """The tool names, in the order the sources listed them."""
        return list(self._entries)

    def specs(self) -> list[ToolSpec]:
        """The tools' specs."""
        return [e.spec for e in self._entries.values()]

    def openai_tools(self) -> list[dict[str, Any]]:
        """Function schemas for a chat request's ``tools`` (built once per tool box)."""
        if self._schemas is None:
            self._schemas = [e.spec.openai_schema() for e in self._entries.values()]
        return self._schemas

    def entry(self, name: str) -> _Entry:
        """The spec and source of ``name``; :class:`ToolCallError` (``unknown_tool``) naming the tools otherwise."""
        found = self._entries.get(name)
        if found is None:
            raise ToolCallError(
                f"there is no tool named {name!r}; the tools are: {', '.join(self.names()) or 'none'}",
                kind="unknown_tool",
            )
        return found

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(slots=True)
class ToolLoopDeps:
    """What the loop's agents use (``ctx.deps``): the model, the tools and the loop's limits."""

    llm: Any
    toolbox: ToolBox
    system: str | None = None
    sampling: SamplingParams = field(default_factory=lambda: SamplingParams(temperature=0.0, max_tokens=1024))
    tool_choice: str = "auto"
    parallel_tool_calls: bool = True
    max_tool_calls: int | None = None
    tool_timeout: float | None = 120.0
    max_result_chars: int = 8000
    results_dir: Path | None = None
    progress: ProgressCallback | None = None

    def first_messages(self, task: Task) -> tuple[ChatMessage, ...]:
        """The conversation a task starts: the system prompt (if any) and the task as the user's turn."""
        turns = [ChatMessage(role="system", content=self.system)] if self.system else []
        return (*turns, ChatMessage(role="user", content=task.statement))

    def calls_left(self, made: int) -> int | None:
        """How many more calls the run may make (``None``: no limit)."""
        return None if self.max_tool_calls is None else max(0, self.max_tool_calls - made)

    def emit(self, kind: str, **data: Any) -> None:
        """Tell the progress callback, if any (its errors never stop the run)."""
        if self.progress is not None:
            with contextlib.suppress(Exception):  # progress display must not break a run
                self.progress(kind, data)


#: Key of ``ctx.state`` where a workflow whose ``ctx.deps`` are not :class:`ToolLoopDeps` (a prover's) keeps them.
LOOP_STATE_KEY = "tool_loop"


def loop_deps(ctx: RunContext[Any]) -> ToolLoopDeps:
    """The loop's dependencies for this attempt: ``ctx.state[LOOP_STATE_KEY]`` if set, else ``ctx.deps``."""
    found = ctx.state.get(LOOP_STATE_KEY)
    deps = found if found is not None else ctx.deps
    if not isinstance(deps, ToolLoopDeps):
        raise MalotError(f"the tool loop needs ToolLoopDeps, got {type(deps).__name__}")
    return deps


class ModelTurnAgent(Agent[Message, ToolConversation]):
    """One model turn: sends the chat and the tool schemas, returns the answer or the calls it asked for.

    The first turn uses the loop's ``tool_choice``; later turns ``auto`` (a forced call on every turn would never
    let the model answer). Once no calls are left, or a budget limit is spent (Lean CPU-seconds, say), the tools
    are no longer offered.
    """

    role = "model"
    resource = "llm"
    input_type = Message
    output_type = ToolConversation

    def estimate(self, message: Message) -> Usage:
        return Usage(samples=1)

    def start(self, message: Message, deps: ToolLoopDeps) -> ToolConversation:
        """The conversation before the first turn (a :class:`Task` starts one; a conversation continues)."""
        if isinstance(message, ToolConversation):
            return message
        if isinstance(message, Task):
            return ToolConversation(outcome="start", messages=deps.first_messages(message))
        raise MalotError(f"the model node takes a Task or a ToolConversation, got {type(message).__name__}")

    async def run(self, message: Message, ctx: RunContext[Any]) -> ToolConversation:
        deps = loop_deps(ctx)
        conv = self.start(message, deps)
        left = deps.calls_left(conv.calls_made)
        offer = len(deps.toolbox) > 0 and left != 0 and _tool_budget_spent(ctx) is None
        request = GenerationRequest(
            prompt=list(conv.messages),
            params=deps.sampling,
            tools=deps.toolbox.openai_tools() if offer else [],
            tool_choice=(deps.tool_choice if conv.turns == 0 else "auto") if offer else "auto",
            parallel_tool_calls=deps.parallel_tool_calls,
        )
        began = time.perf_counter()
        (result,) = await deps.llm.generate([request])
        if not result.completions:
            raise MalotError("the model returned no completion", hint="check the LLM backend's logs")
        completion = result.completions[0]
        calls = tuple(completion.tool_calls) if offer else ()
        turn = conv.turns + 1
        ctx.note(turn=turn, llm_s=time.perf_counter() - began, tool_calls=[c.name for c in calls])
        deps.emit("turn", turn=turn, tool_calls=[c.name for c in calls], text=completion.text)
        usage = Usage(samples=1, tokens_in=result.prompt_tokens, tokens_out=completion.tokens)
        said = ChatMessage(role="assistant", content=completion.text, tool_calls=calls)
        return conv.model_copy(
            update={
                "outcome": "tool_calls" if calls else "answer",
                "messages": (*conv.messages, said),
                "pending": calls,
                "answer": "" if calls else completion.text,
                "turns": turn,
                "usage": usage,
            }
        )


class ToolCallsAgent(Agent[ToolConversation, ToolConversation]):
    """Runs the pending calls of a turn concurrently and appends one ``tool`` turn per call (result or error)."""

    role = "tools"
    resource = "tools"

    async def run(self, message: ToolConversation, ctx: RunContext[Any]) -> ToolConversation:
        deps = loop_deps(ctx)
        left = deps.calls_left(message.calls_made)
        allowed = len(message.pending) if left is None else min(left, len(message.pending))
        spent = _tool_budget_spent(ctx)
        if spent is not None:
            allowed = 0
        async with asyncio.TaskGroup() as tg:
            tasks = [
                tg.create_task(self._call(call, deps, message.turns, k < allowed, ctx, spent))
                for k, call in enumerate(message.pending)
            ]
        outcomes = [t.result() for t in tasks]
        turns = [turn for turn, _, _ in outcomes]
        records = [record for _, record, _ in outcomes]
        lean = sum(cpu for _, _, cpu in outcomes)
        for record in records:  # in call order, one trace note per call
            ctx.note(tool_call=record.model_dump(mode="json"))
        made = message.calls_made + allowed
        if deps.calls_left(made) == 0:
            turns.append(
                ChatMessage(
                    role="user",
                    content=f"You have used all {deps.max_tool_calls} tool calls. Give your final answer now.",
                )
            )
        return message.model_copy(
            update={
                "outcome": "tool_results",
                "messages": (*message.messages, *turns),
                "pending": (),
                "calls_made": made,
                "records": (*message.records, *records),
                "usage": Usage(lean_cpu_seconds=lean),
            }
        )

    async def _call(
        self, call: ToolCall, deps: ToolLoopDeps, turn: int, allowed: bool, ctx: RunContext[Any], spent: str | None
    ) -> tuple[ChatMessage, ToolCallRecord, float]:
        began = time.perf_counter()
        digest = hashlib.sha256(call.arguments.encode("utf-8", "replace")).hexdigest()[:16]
        source_name = ""
        content: str
        error: str | None = None
        kind: ToolErrorKind | None = None
        result_file: str | None = None
        lean = 0.0
        deps.emit("call_started", id=call.id, tool=call.name, arguments=call.arguments[:500])
        try:
            if spent is not None:
                raise ToolCallError(f"the run's {spent} budget is spent; answer without tools", kind="budget")
            if not allowed:
                raise ToolCallError(
                    f"no tool calls left (the limit is {deps.max_tool_calls}); answer without tools", kind="budget"
                )
            entry = deps.toolbox.entry(call.name)
            source_name = entry.source.name
            arguments = _parse_arguments(call)
            try:
                async with asyncio.timeout(deps.tool_timeout):
                    result = await entry.source.call_tool(call.name, arguments)
            except TimeoutError:
                raise ToolCallError(
                    f"tool {call.name!r} did not answer within {deps.tool_timeout} s and was stopped", kind="timeout"
                ) from None
            content, result_file = _shrink(result.content, call, deps)
            lean = result.lean_cpu_seconds
        except ToolCallError as exc:
            error, kind = str(exc), exc.kind
        except ToolError as exc:
            error, kind = str(exc), "failed"
        except Exception as exc:  # a source's own bug still goes back to the model, named
            error, kind = f"tool {call.name!r} failed: {type(exc).__name__}: {exc}", "failed"
        if error is not None:
            content = json.dumps({"error": error})
        record = ToolCallRecord(
            id=call.id,
            tool=call.name,
            source=source_name,
            arguments_sha256=digest,
            arguments_chars=len(call.arguments),
            duration_s=time.perf_counter() - began,
            result_chars=0 if error is not None else len(content),
            error=error,
            error_kind=kind,
            result_file=result_file,
            turn=turn,
        )
        if ctx.emit is not None or deps.progress is not None:
            data = record.model_dump(mode="json")
            ctx.publish(tool_call=data)  # one trace event per call, as it finishes
            deps.emit("call_finished", **data)
        reply = ChatMessage(role="tool", content=content, tool_call_id=call.id, name=call.name)
        return reply, record, lean


def _tool_budget_spent(ctx: RunContext[Any]) -> str | None:
    """The spent limit that forbids more tool calls: Lean CPU-seconds (charged by lean_check and the like) or wall
    time. (Spent samples or tokens stop the next model turn instead; the calls already asked for still run.)"""
    spent = ctx.meter.exhausted()
    return spent if spent in ("lean_cpu_seconds", "wall_seconds") else None


def _parse_arguments(call: ToolCall) -> dict[str, Any]:
    text = call.arguments.strip() or "{}"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ToolCallError(
            f"the arguments of {call.name!r} are not valid JSON ({exc.msg} at character {exc.pos}); "
            "send one JSON object with the arguments",
            kind="invalid_json",
        ) from None
    if not isinstance(value, dict):
        raise ToolCallError(
            f"the arguments of {call.name!r} must be a JSON object, got {type(value).__name__}", kind="invalid_json"
        )
    return value


def _shrink(content: str, call: ToolCall, deps: ToolLoopDeps) -> tuple[str, str | None]:
    """Large results go to a file; the model gets a reference (path, size, preview) instead of the blob."""
    if len(content) <= deps.max_result_chars:
        return content, None
    folder = deps.results_dir or Path(tempfile.gettempdir()) / "malot-tool-results"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{call.name}-{call.id}-{uuid.uuid4().hex[:6]}.json"
    path.write_text(content, encoding="utf-8")
    preview = content[: max(200, deps.max_result_chars // 4)]
    reference = {"result_file": str(path), "chars": len(content), "preview": preview, "truncated": True}
    return json.dumps(reference), str(path)


RunStatus = Literal["answered", "max_steps", "budget", "timeout", "cancelled", "error", "failed"]


class ToolRunResult(BaseModel):
    """How a :meth:`ToolAgent.run` ended: the answer (if any), every call's record, and what it spent."""

    status: RunStatus
    answer: str = ""
    reason: str | None = None
    error: str | None = None
    turns: int = 0
    steps: int = 0
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    wall_s: float = 0.0
    unavailable: dict[str, str] = Field(default_factory=dict)
    messages: list[ChatMessage] = Field(default_factory=list)

    @property
    def answered(self) -> bool:
        """Whether the model gave a final answer."""
        return self.status == "answered"


class ToolAgent:
    """A model that calls tools until it answers (see the module docstring).

    ``tools``: tool sources (a :class:`malot.tools.RegistrySource`, MCP sources, ...); ``only`` keeps the named
    tools. ``max_steps`` bounds the model turns; ``max_tool_calls`` the calls of one run; ``tool_timeout`` each call
    (seconds). ``tool_choice`` applies to the first turn (``auto``, ``required``, ``none`` or a tool name);
    ``parallel_tool_calls=False`` asks for at most one call per turn.
    """

    def __init__(
        self,
        llm: Any,
        tools: ToolSource | Sequence[ToolSource] = (),
        *,
        only: Sequence[str] | None = None,
        system: str | None = None,
        max_steps: int = 8,
        max_tool_calls: int | None = None,
        tool_timeout: float | None = 120.0,
        tool_choice: str = "auto",
        parallel_tool_calls: bool = True,
        sampling: SamplingParams | None = None,
        max_result_chars: int = 8000,
        results_dir: str | Path | None = None,
        name: str = "tool-agent",
    ) -> None:
        if max_steps < 1:
            raise MalotError(f"max_steps must be at least 1, got {max_steps}")
        self.llm = llm
        self.sources: list[ToolSource] = [tools] if isinstance(tools, ToolSource) else list(tools)
        self.only = list(only) if only is not None else None
        self.system = system
        self.max_steps = max_steps
        self.max_tool_calls = max_tool_calls
        self.tool_timeout = tool_timeout
        self.tool_choice = tool_choice
        self.parallel_tool_calls = parallel_tool_calls
        self.sampling = sampling or SamplingParams(temperature=0.0, max_tokens=1024)
        self.max_result_chars = max_result_chars
        self.results_dir = Path(results_dir) if results_dir is not None else None
        self.name = name

    def workflow(self) -> Workflow:
        """``model -> tools -> model ... -> END``; ``max_steps`` model turns at most."""
        return Workflow(
            self.name,
            [ModelTurnAgent(), ToolCallsAgent()],
            [Edge("model", "tools", "tool_calls"), Edge("model", END), ("tools", "model")],
            start="model",
            max_steps=2 * self.max_steps - 1,
        )

    async def deps(self, progress: ProgressCallback | None = None) -> ToolLoopDeps:
        """Gather the tools and build the loop's dependencies."""
        box = await ToolBox.gather(self.sources, only=self.only)
        return ToolLoopDeps(
            llm=self.llm,
            toolbox=box,
            system=self.system,
            sampling=self.sampling,
            tool_choice=self.tool_choice,
            parallel_tool_calls=self.parallel_tool_calls,
            max_tool_calls=self.max_tool_calls,
            tool_timeout=self.tool_timeout,
            max_result_chars=self.max_result_chars,
            results_dir=self.results_dir,
            progress=progress,
        )

    async def run(
        self,
        task: str,
        *,
        executor: Executor | None = None,
        budget: Budget | None = None,
        progress: ProgressCallback | None = None,
        deps: ToolLoopDeps | None = None,
    ) -> ToolRunResult:
        """Run the loop for ``task`` on ``executor`` (a fresh one if ``None``) within ``budget``."""
        loop_deps = deps or await self.deps(progress)
        runner = executor or Executor()
        group = await runner.run_group(self.workflow(), [Task(statement=task)], loop_deps, budget=budget)
        attempt = group.attempts[0]
        conv = next((m for m in reversed(attempt.history) if isinstance(m, ToolConversation)), None)
        status: RunStatus = "answered" if attempt.succeeded else attempt.status  # type: ignore[assignment]
        return ToolRunResult(
            status=status,
            answer=conv.answer if conv is not None else "",
            reason=attempt.reason,
            error=attempt.error,
            turns=conv.turns if conv is not None else 0,
            steps=attempt.steps,
            tool_calls=list(conv.records) if conv is not None else [],
            usage=attempt.usage,
            wall_s=attempt.wall_s,
            unavailable=dict(loop_deps.toolbox.unavailable),
            messages=list(conv.messages) if conv is not None else [],
        )
