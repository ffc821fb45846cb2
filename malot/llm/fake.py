"""The scripted model: a test double for the LLM boundary, shipped with malot for its tests and for users' tests.

:class:`ScriptedLLM` answers from

* a list of responses, handed out one per sample in order;
* a mapping ``prompt substring -> response or list of responses`` (the first key, in order, found in the prompt
  text wins; a single response answers every match, a list is handed out one per sample in order); or
* a function ``fn(request) -> str | list[str]`` called once per sample (a list answers all ``n`` samples at once).

A response is a string or a dict ``{"text": ..., "finish_reason": ..., "tool_calls": [...], "logprobs": [...]}``
(``logprobs``: the sampled tokens' log-probabilities, returned when the request asks for them; build the model with
``capabilities`` whose ``logprobs`` is true); a scripted tool call
is ``{"name": ..., "arguments": {...} or "raw JSON text", "id": ...}`` (``id`` optional), so every path of a
tool-calling loop (parallel calls, invalid JSON, unknown tools) can be scripted. Stop strings in the request cut the
response as a real backend would. Every request is recorded in :attr:`ScriptedLLM.requests` (and every
``generate`` call's batch in :attr:`ScriptedLLM.calls`) so tests can assert what agents asked.

On the command line and in config, ``script:FILE`` selects it: ``FILE`` holds JSON lines, one response each, or one
JSON object mapping prompt substrings to responses.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from malot.errors import ConfigError, LLMError
from malot.llm.base import (
    BaseLLM,
    Capabilities,
    Completion,
    GenerationRequest,
    GenerationResult,
    ToolCall,
    prompt_text,
    truncate_at_stop,
)

__all__ = ["Response", "ScriptedLLM", "load_script"]

#: One scripted answer: its text, or ``{"text": ..., "finish_reason": ...}``.
Response = str | Mapping[str, Any]
ScriptFunction = Callable[[GenerationRequest], "Response | Sequence[Response]"]
Scorer = Callable[[GenerationRequest], "float | Sequence[float]"]
OnExhausted = Literal["error", "cycle", "repeat_last"]


class _Queue:
    """Responses handed out in order, with a policy for when they run out."""

    def __init__(self, responses: Sequence[Response], on_exhausted: OnExhausted, label: str) -> None:
        if not responses:
            raise ConfigError(f"scripted model: {label} has no responses", hint="give at least one response")
        self.responses = list(responses)
        self.on_exhausted = on_exhausted
        self.label = label
        self.index = 0

    def next(self) -> Response:
        if self.index >= len(self.responses):
            if self.on_exhausted == "error":
                raise LLMError(
                    f"scripted model ran out of responses for {self.label} after {len(self.responses)}",
                    hint="add responses to the script or pass on_exhausted='cycle' or 'repeat_last'",
                )
            if self.on_exhausted == "cycle":
                self.index = 0
            else:
                return self.responses[-1]
        response = self.responses[self.index]
        self.index += 1
        return response


class ScriptedLLM(BaseLLM):
    """A deterministic fake model answering from a list, a substring mapping or a function; records its requests.

    ``scorer`` (optional) answers scoring requests (``score_continuation``): a function returning the total
    log-probability (or one per token); without it the model reports no prompt-log-prob capability, so strategies
    that need scoring fail with a :class:`~malot.errors.CapabilityError`, as on a real backend without it.
    ``default`` answers prompts that match no key of a mapping (otherwise that is an error).

    For tests of timing and cancellation, without writing a wrapper: ``latency_s`` makes every ``generate`` call take
    that long (a number, or a function of the request: the slowest request of a batch sets the call's delay), and
    ``gate`` holds every call until the event is set. :attr:`held` counts the calls waiting now, and
    :meth:`wait_held` waits (without polling) until that many are waiting: a test knows the model is "busy".
    """

    def __init__(
        self,
        script: Sequence[Response] | Mapping[str, Response | Sequence[Response]] | ScriptFunction,
        *,
        default: Response | None = None,
        on_exhausted: OnExhausted = "error",
        scorer: Scorer | None = None,
        capabilities: Capabilities | None = None,
        latency_s: float | Callable[[GenerationRequest], float] = 0.0,
        gate: asyncio.Event | None = None,
    ) -> None:
        self.latency_s = latency_s
        self.gate = gate
        self.held = 0
        self._held_changed: asyncio.Condition | None = None
        self._function: ScriptFunction | None = None
        self._queue: _Queue | None = None
        self._mapping: dict[str, _Queue] = {}
        if callable(script) and not isinstance(script, Mapping | Sequence):
            self._function = script
        elif isinstance(script, Mapping):
            for key, value in script.items():
                label = f"prompts containing {key!r}"
                if isinstance(value, str | Mapping):  # a single response answers every matching prompt
                    self._mapping[str(key)] = _Queue([value], "repeat_last", label)
                else:
                    self._mapping[str(key)] = _Queue(list(value), on_exhausted, label)
        elif isinstance(script, Sequence) and not isinstance(script, str):
            self._queue = _Queue(list(script), on_exhausted, "the response list")
        else:
            raise ConfigError("scripted model: the script must be a list, a mapping or a function")
        self._default = default
        self._scorer = scorer
        self._capabilities = capabilities or Capabilities(
            backend="scripted",
            chat=True,
            infill=True,
            prompt_logprobs=scorer is not None,
            logprobs=False,
            tool_calls=True,
        )
        self.requests: list[GenerationRequest] = []
        self.calls: list[list[GenerationRequest]] = []
        self.closed = False

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> ScriptedLLM:
        """Build a scripted model from a ``script:FILE`` file (see :func:`load_script`)."""
        return cls(load_script(path), **kwargs)

    @property
    def prompts(self) -> list[str]:
        """The plain-text prompts of every recorded request, in order."""
        return [prompt_text(r) for r in self.requests]

    async def _generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        self.calls.append(list(requests))
        self.requests.extend(requests)
        delay = max((self._latency(r) for r in requests), default=0.0)
        if delay > 0 or self.gate is not None:
            await self._hold(delay)
        return [self._answer(r) for r in requests]

    def _latency(self, request: GenerationRequest) -> float:
        return float(self.latency_s(request) if callable(self.latency_s) else self.latency_s)

    def _condition(self) -> asyncio.Condition:
        if self._held_changed is None:
            self._held_changed = asyncio.Condition()
        return self._held_changed

    async def _hold(self, delay: float) -> None:
        """Wait for the gate, then the latency, counted in :attr:`held` (cancellation leaves the count right)."""
        condition = self._condition()
        async with condition:
            self.held += 1
            condition.notify_all()
        try:
            if self.gate is not None:
                await self.gate.wait()
            if delay > 0:
                await asyncio.sleep(delay)
        finally:
            self.held -= 1

    async def wait_held(self, count: int = 1) -> None:
        """Return once at least ``count`` ``generate`` calls are waiting at the gate or in their latency."""
        condition = self._condition()
        async with condition:
            await condition.wait_for(lambda: self.held >= count)

    def _answer(self, request: GenerationRequest) -> GenerationResult:
        text = prompt_text(request)
        prompt_tokens = len(text.split())
        if request.score_continuation is not None:
            assert self._scorer is not None  # guaranteed by the capability check
            score = self._scorer(request)
            per_token = [float(score)] if isinstance(score, int | float) else [float(s) for s in score]
            return GenerationResult(prompt_tokens=prompt_tokens, continuation_logprobs=per_token)
        responses = self._responses(request, text)
        completions = [self._completion(r, request) for r in responses]
        return GenerationResult(completions=completions, prompt_tokens=prompt_tokens)

    def _responses(self, request: GenerationRequest, text: str) -> list[Response]:
        n = request.params.n
        if self._function is not None:
            out: list[Response] = []
            while len(out) < n:
                answer = self._function(request)
                if isinstance(answer, str | Mapping):
                    out.append(answer)
                else:
                    out.extend(answer)
            return out[:n]
        if self._queue is not None:
            return [self._queue.next() for _ in range(n)]
        for key, queue in self._mapping.items():
            if key in text:
                return [queue.next() for _ in range(n)]
        if self._default is not None:
            return [self._default] * n
        keys = ", ".join(repr(k) for k in self._mapping)
        raise LLMError(
            f"scripted model has no response for prompt {text[:80]!r}... (keys: {keys})",
            hint="add a matching substring key to the script or pass default=...",
        )

    @staticmethod
    def _completion(response: Response, request: GenerationRequest) -> Completion:
        calls: list[ToolCall] = []
        logprobs: list[float] | None = None
        if isinstance(response, str):
            raw, finish = response, "stop"
        else:
            raw, finish = str(response.get("text", "")), str(response.get("finish_reason", "stop"))
            if response.get("logprobs") is not None and request.params.logprobs is not None:
                logprobs = [float(x) for x in response["logprobs"]]
            calls = _scripted_calls(response.get("tool_calls") or [])
        text, stopped = truncate_at_stop(raw, request.params.stop)
        if finish not in ("stop", "length", "unfinished"):
            raise ConfigError(f"scripted model: unknown finish_reason {finish!r}", hint="use stop, length, unfinished")
        return Completion(
            text=text,
            finish_reason="stop" if stopped else finish,
            tokens=len(text.split()),
            tool_calls=calls,
            logprobs=logprobs,
        )

    async def aclose(self) -> None:
        """Mark the model closed (tests check that owners close their models)."""
        self.closed = True


def _scripted_calls(raw: Sequence[Any]) -> list[ToolCall]:
    """Scripted tool calls (``{"name", "arguments", "id"?}``) as :class:`ToolCall` values; dict arguments become
    JSON text, string arguments are kept verbatim (so invalid JSON can be scripted)."""
    calls = []
    for k, item in enumerate(raw):
        if not isinstance(item, Mapping) or "name" not in item:
            raise ConfigError(
                f"scripted model: tool call {item!r} needs a 'name'", hint='{"name": ..., "arguments": {}}'
            )
        args = item.get("arguments", {})
        text = args if isinstance(args, str) else json.dumps(args)
        calls.append(
            ToolCall(
                id=str(item.get("id") or f"call_{uuid.uuid4().hex[:8]}_{k}"), name=str(item["name"]), arguments=text
            )
        )
    return calls


def load_script(path: str | Path) -> list[Response] | dict[str, Response | list[Response]]:
    """Read a ``script:FILE`` file: one JSON object mapping substrings to responses, or JSON lines of responses."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"script file {p} does not exist", hint="pass script:FILE with an existing JSON(L) file")
    text = p.read_text(encoding="utf-8")
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError:
            data = None  # maybe JSON lines of objects
        if isinstance(data, dict) and not {"text"} >= set(data) - {"finish_reason", "tool_calls"}:
            return {str(k): v for k, v in data.items()}
    responses: list[Response] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"script file {p} line {lineno} is not JSON: {exc}",
                hint='write one JSON string (e.g. "theorem ...") or {"text": ...} per line',
            ) from None
        if not isinstance(value, str | dict):
            raise ConfigError(f"script file {p} line {lineno}: expected a JSON string or object, got {value!r}")
        responses.append(value)
    if not responses:
        raise ConfigError(f"script file {p} holds no responses", hint="write one JSON response per line")
    return responses
