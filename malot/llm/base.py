"""The interface every LLM backend implements: requests, results, capabilities and the :class:`LLM` protocol.

Agents never talk to a model library directly; they build :class:`GenerationRequest` objects and hand a batch of them
to :meth:`LLM.generate`. A request's prompt is plain text, a list of :class:`ChatMessage` (rendered with the model's
chat template by the backend or the server), or an :class:`InfillPrompt` (prefix + hole + suffix for code LLMs such
as CodeGen2). A request with ``score_continuation`` set is a *scoring* request: the backend returns the log-probability
of each token of that continuation given the prompt (``GenerationResult.continuation_logprobs``) and samples nothing.

Backends report what they can do in :class:`Capabilities`; :func:`check_requests` raises
:class:`~malot.errors.CapabilityError` with a clear message when a request asks for something the backend lacks.

Logits processors (used by the fusion plugin) are per-request Python callables ``processor(input_ids, scores) ->
scores`` with the same contract as a Hugging Face ``LogitsProcessor``; only in-process backends that report
``Capabilities.logits_processors`` accept them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Protocol, Self, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from malot.errors import CapabilityError
from malot.resources import AsyncResource

__all__ = [
    "LLM",
    "BaseLLM",
    "Capabilities",
    "ChatMessage",
    "Completion",
    "FinishReason",
    "GenerationRequest",
    "GenerationResult",
    "InfillPrompt",
    "LogitsProcessor",
    "SamplingParams",
    "SupportsGenerate",
    "ToolCall",
    "check_requests",
    "prompt_text",
    "truncate_at_stop",
]

#: ``stop``: a stop string, EOS or the infill end sentinel was reached; ``length``: ``max_tokens`` ran out;
#: ``unfinished``: an infill request ended without its end sentinel (e.g. CodeGen2's ``<eom>``).
FinishReason = Literal["stop", "length", "unfinished"]


class LogitsProcessor(Protocol):
    """A callable that rewrites next-token scores, as Hugging Face's ``LogitsProcessor``.

    ``input_ids`` is a ``(batch, seq_len)`` tensor of the tokens so far (prompt included), ``scores`` a
    ``(batch, vocab)`` float tensor of next-token logits; it returns the new scores (it may modify them in place).
    """

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        """Return the processed ``scores``."""
        ...


class SamplingParams(BaseModel):
    """How to sample: number of samples, temperature, nucleus mass, length limit, stop strings, seed, log-probs.

    ``temperature == 0`` means greedy decoding. ``logprobs`` asks for the log-probability of every sampled token
    (``Completion.logprobs``); its value is how many top alternatives the server should consider (0 is enough for
    the chosen tokens).
    """

    model_config = ConfigDict(extra="forbid")

    n: int = Field(1, ge=1)
    temperature: float = Field(1.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(256, ge=1)
    stop: list[str] = Field(default_factory=list)
    seed: int | None = None
    logprobs: int | None = Field(None, ge=0, le=20)


class ToolCall(BaseModel):
    """A function call a model asked for: an id (to pair it with its result), the tool's name and the arguments as
    the JSON text the model wrote (it may be invalid; the caller parses and validates it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    name: str
    arguments: str = "{}"

    def openai(self) -> dict[str, Any]:
        """The call in the OpenAI chat format."""
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


class ChatMessage(BaseModel):
    """One chat turn; a list of them is rendered with the model's chat template.

    An ``assistant`` turn may carry ``tool_calls``; a ``tool`` turn answers one call (``tool_call_id``, ``name``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["system", "user", "assistant", "tool"]
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None

    def openai(self) -> dict[str, Any]:
        """The turn in the OpenAI chat format (only the fields that are set)."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = [c.openai() for c in self.tool_calls]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.name is not None and self.role == "tool":
            out["name"] = self.name
        return out

    def template(self) -> dict[str, Any]:
        """The turn as Hugging Face chat templates expect it (tool-call arguments as objects, not JSON text)."""
        out = self.openai()
        if self.tool_calls:
            out["tool_calls"] = [
                {"type": "function", "function": {"name": c.name, "arguments": _json_object(c.arguments)}}
                for c in self.tool_calls
            ]
        return out


def _json_object(text: str) -> Any:
    import json

    try:
        return json.loads(text)
    except ValueError:
        return text


class InfillPrompt(BaseModel):
    """A fill-in-the-middle request: the model writes the code between ``prefix`` and ``suffix``.

    ``family`` selects the sentinel format; ``codegen2`` (also used by CodeGen2.5) renders
    ``prefix<mask_1>suffix<|endoftext|><sep><mask_1>`` and cuts the output at ``<eom>``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    prefix: str
    suffix: str = ""
    family: Literal["codegen2"] = "codegen2"


class GenerationRequest(BaseModel):
    """One prompt and how to answer it.

    ``score_continuation``: score this text as the continuation of ``prompt`` instead of sampling (the result's
    ``continuation_logprobs`` holds one log-probability per continuation token, ``completions`` is empty).
    ``logits_processors``: per-request processors for in-process backends (not serialised).
    ``tools``: function schemas in the OpenAI format (chat prompts only; needs ``Capabilities.tool_calls``);
    ``tool_choice``: ``auto``, ``required``, ``none``, or the name of the one function the model must call;
    ``parallel_tool_calls``: whether one turn may hold several calls.
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    prompt: str | list[ChatMessage] | InfillPrompt
    params: SamplingParams = Field(default_factory=SamplingParams)
    score_continuation: str | None = None
    logits_processors: list[Any] = Field(default_factory=list, exclude=True)
    tools: list[dict[str, Any]] = Field(default_factory=list)
    tool_choice: str = "auto"
    parallel_tool_calls: bool = True

    @property
    def kind(self) -> Literal["text", "chat", "infill"]:
        """Which of the three prompt forms this request uses."""
        if isinstance(self.prompt, str):
            return "text"
        if isinstance(self.prompt, InfillPrompt):
            return "infill"
        return "chat"


class Completion(BaseModel):
    """One sampled answer: its text, why it ended, how many tokens it took and (if asked) their log-probs."""

    model_config = ConfigDict(extra="forbid")

    text: str
    finish_reason: FinishReason = "stop"
    tokens: int = 0
    logprobs: list[float] | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)

    @property
    def cumulative_logprob(self) -> float | None:
        """Sum of the token log-probabilities, if they were requested."""
        return None if self.logprobs is None else float(sum(self.logprobs))


class GenerationResult(BaseModel):
    """The answer to one :class:`GenerationRequest`: ``n`` completions, or the continuation's log-probs."""

    model_config = ConfigDict(extra="forbid")

    completions: list[Completion] = Field(default_factory=list)
    prompt_tokens: int = 0
    continuation_logprobs: list[float] | None = None

    @property
    def texts(self) -> list[str]:
        """The completion texts, in order."""
        return [c.text for c in self.completions]

    @property
    def completion_tokens(self) -> int:
        """Tokens generated over all completions."""
        return sum(c.tokens for c in self.completions)

    @property
    def continuation_logprob(self) -> float | None:
        """Total log-probability of ``score_continuation`` given the prompt (``None`` for sampling requests)."""
        return None if self.continuation_logprobs is None else float(sum(self.continuation_logprobs))


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend can do; strategies check these before relying on a feature."""

    backend: str
    chat: bool = True
    infill: bool = False
    prompt_logprobs: bool = False
    logprobs: bool = True
    logits_processors: bool = False
    streaming: bool = False
    tool_calls: bool = False
    seed: bool = True
    max_context: int | None = None
    notes: tuple[str, ...] = field(default=())

    def missing(self, request: GenerationRequest) -> list[str]:
        """The features ``request`` needs that this backend lacks (empty when it can be served)."""
        out = []
        if request.kind == "chat" and not self.chat:
            out.append("chat messages (the model has no chat template)")
        if request.kind == "infill" and not self.infill:
            out.append("infilling")
        if request.score_continuation is not None and not self.prompt_logprobs:
            out.append("prompt log-probabilities (score_continuation)")
        if request.params.logprobs is not None and not self.logprobs:
            out.append("sampled-token log-probabilities")
        if request.logits_processors and not self.logits_processors:
            out.append("logits processors")
        if request.tools and not self.tool_calls:
            out.append("tool calling")
        if request.tools and request.kind != "chat":
            out.append("tool calling on a non-chat prompt (tools need chat messages)")
        return out


def check_requests(capabilities: Capabilities, requests: Sequence[GenerationRequest]) -> None:
    """Raise :class:`CapabilityError` if any request needs a feature ``capabilities`` lacks."""
    for i, request in enumerate(requests):
        missing = capabilities.missing(request)
        if missing:
            raise CapabilityError(
                f"the {capabilities.backend} backend cannot serve request {i}: it lacks {', '.join(missing)}",
                hint=_capability_hint(missing),
            )


def _capability_hint(missing: list[str]) -> str:
    if any("logits processors" in m for m in missing):
        return "use the transformers backend (--backend hf) for logits processors"
    if any("infilling" in m for m in missing):
        return "use a code model with infill sentinels (e.g. CodeGen2) on the transformers backend"
    if any("tool calling" in m for m in missing):
        return "send chat messages to a backend with tool calling (OpenAI-compatible, vLLM, transformers, scripted)"
    if any("prompt log" in m for m in missing):
        return "use a backend with prompt log-probs (transformers, vLLM, or a server that supports echo+logprobs)"
    return "choose a backend that reports this capability (see 'malot doctor')"


def prompt_text(request: GenerationRequest) -> str:
    """A plain-text view of a request's prompt (for matching, logging and scripted answers)."""
    prompt = request.prompt
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, InfillPrompt):
        return prompt.prefix + prompt.suffix
    return "\n".join(f"{m.role}: {m.content}" for m in prompt)


def truncate_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut ``text`` before the earliest stop string; return the text and whether a stop string was found."""
    cut = -1
    for s in stop:
        if not s:
            continue
        i = text.find(s)
        if i >= 0 and (cut < 0 or i < cut):
            cut = i
    return (text, False) if cut < 0 else (text[:cut], True)


@runtime_checkable
class SupportsGenerate(Protocol):
    """What agents need of a model: its capabilities and batched generation (an :class:`LLM`, or a wrapper of one
    such as the prover's request batcher, that the agents do not open or close)."""

    @property
    def capabilities(self) -> Capabilities:
        """What the model can do."""
        ...

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Answer every request (same order)."""
        ...


@runtime_checkable
class LLM(Protocol):
    """What every backend is: capabilities, batched async generation, and async clean-up.

    ``generate`` answers the requests in order; many requests in one call go to the engine together.
    """

    @property
    def capabilities(self) -> Capabilities:
        """What this backend can do."""
        ...

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Answer every request (same order)."""
        ...

    async def aclose(self) -> None:
        """Release connections, engines and processes."""
        ...

    async def __aenter__(self) -> Self:
        """Enter the context (backends may start lazily)."""
        ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Close the backend."""
        ...


class BaseLLM(AsyncResource):
    """Shared plumbing for backends: the async context manager, capability checks and small conveniences.

    Subclasses set ``_capabilities`` and implement :meth:`_generate`; :meth:`generate` checks every request
    against the capabilities first, so unsupported features fail early with a :class:`CapabilityError`.
    """

    _capabilities: Capabilities

    @property
    def capabilities(self) -> Capabilities:
        """What this backend can do."""
        return self._capabilities

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Check the requests against the capabilities, then answer them in order."""
        requests = list(requests)
        if not requests:
            return []
        check_requests(self.capabilities, requests)
        return await self._generate(requests)

    async def _generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        raise NotImplementedError

    async def complete(self, prompt: str | Sequence[ChatMessage] | InfillPrompt, **params: Any) -> list[str]:
        """Convenience: sample for one prompt with keyword sampling parameters and return the texts."""
        p = list(prompt) if isinstance(prompt, list | tuple) else prompt
        request = GenerationRequest(prompt=p, params=SamplingParams(**params))
        (result,) = await self.generate([request])
        return result.texts

    async def score(self, prompt: str | Sequence[ChatMessage], continuation: str) -> float:
        """Convenience: total log-probability of ``continuation`` given ``prompt``."""
        p = list(prompt) if isinstance(prompt, list | tuple) else prompt
        (result,) = await self.generate([GenerationRequest(prompt=p, score_continuation=continuation)])
        assert result.continuation_logprob is not None
        return result.continuation_logprob

    async def aclose(self) -> None:
        """Release resources (nothing by default)."""
