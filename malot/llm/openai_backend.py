"""The OpenAI-compatible HTTP backend: ``vllm serve``, SGLang, or any server speaking ``/v1/completions`` and
``/v1/chat/completions``, reached with httpx (or httpx2, its maintained successor with the same API, when installed).

Model strings: ``http://host:port/v1#served-name`` (``#name`` omitted: the server's first model from ``/v1/models``).

* Text prompts go to ``/completions``, chat prompts to ``/chat/completions`` (the server applies the chat template);
  ``n`` samples, stop strings, seed and sampled-token log-probs are passed through.
* Prompt scoring (``score_continuation``, text prompts only) uses ``echo`` + ``logprobs`` on ``/completions`` and
  keeps the log-probs of the tokens that cover the continuation's characters; servers that reject ``echo`` answer
  with a 4xx, reported as an :class:`~malot.errors.LLMError`.
* Infill requests (``infill=True``: the served model uses CodeGen2 sentinels, e.g. CodeGen2.5 on vLLM) are sent as
  rendered text with ``<eom>`` as a stop string and ``skip_special_tokens: false`` (a vLLM extension).
* :meth:`OpenAICompatibleLLM.stream` yields text deltas as the server streams them (server-sent events).
* One pooled ``AsyncClient``; at most ``max_concurrency`` requests in flight; timeouts; retries with
  exponential backoff and jitter on 429, 5xx and connection errors/timeouts (``Retry-After`` is honoured); other
  4xx answers fail at once with the server's message and a hint.

HTTP library: ``http_library="auto"`` uses ``httpx2`` when it is importable (the ``openai`` package depends on it)
and ``httpx`` otherwise; measured here, httpx 0.28's connection pool (httpcore 1.0) spent about 0.5 ms more client CPU
per request than httpx2's, which showed as a 15-30% throughput gap against a tiny local model
(``benchmarks/llm_overhead.py``). A ``transport`` passed in decides the library (an ``httpx.MockTransport`` means
httpx).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from malot.config import LLMSettings
from malot.errors import CapabilityError, LLMError
from malot.llm.base import (
    BaseLLM,
    Capabilities,
    Completion,
    FinishReason,
    GenerationRequest,
    GenerationResult,
    InfillPrompt,
    SamplingParams,
    ToolCall,
)
from malot.llm.infill import CODEGEN2, render_infill_text

__all__ = ["OpenAICompatibleLLM", "RetryPolicy", "StreamDelta"]

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


# ---- wire models (only the fields malot reads; everything else is ignored) -------------------------------------


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _TextLogprobs(_Wire):
    tokens: list[str] = []
    token_logprobs: list[float | None] = []
    text_offset: list[int] = []


class _TextChoice(_Wire):
    index: int = 0
    text: str
    finish_reason: str | None = None
    stop_reason: int | str | None = None
    logprobs: _TextLogprobs | None = None


class _ChatTokenLogprob(_Wire):
    token: str
    logprob: float


class _ChatLogprobs(_Wire):
    content: list[_ChatTokenLogprob] | None = None


class _FunctionOut(_Wire):
    name: str
    arguments: str | dict[str, Any] = "{}"


class _ToolCallOut(_Wire):
    id: str | None = None
    function: _FunctionOut


class _ChatMessageOut(_Wire):
    content: str | None = None
    tool_calls: list[_ToolCallOut] | None = None


class _ChatChoice(_Wire):
    index: int = 0
    message: _ChatMessageOut
    finish_reason: str | None = None
    stop_reason: int | str | None = None
    logprobs: _ChatLogprobs | None = None


class _Usage(_Wire):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class _TextResponse(_Wire):
    choices: list[_TextChoice]
    usage: _Usage | None = None


class _ChatResponse(_Wire):
    choices: list[_ChatChoice]
    usage: _Usage | None = None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries for 429/5xx/connection errors: up to ``max_retries`` more tries, exponential backoff with jitter.

    The wait before retry ``k`` (0-based) is ``min(max_s, base_s * 2**k)`` scaled by a random factor in
    ``[0.5, 1]``; a ``Retry-After`` header (seconds) replaces it, capped at ``max_s``.
    """

    max_retries: int = 5
    base_s: float = 0.5
    max_s: float = 30.0

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        if retry_after:
            try:
                return min(self.max_s, max(0.0, float(retry_after)))
            except ValueError:
                pass
        return float(min(self.max_s, self.base_s * 2**attempt) * (0.5 + random.random() / 2))


@dataclass(frozen=True, slots=True)
class StreamDelta:
    """A piece of streamed output: new text for sample ``index``, and its finish reason on the last piece."""

    index: int
    text: str
    finish_reason: FinishReason | None = None


def _finish(reason: str | None) -> FinishReason:
    return "length" if reason == "length" else "stop"


def http_library(choice: Literal["auto", "httpx", "httpx2"] = "auto", transport: Any = None) -> ModuleType:
    """The HTTP client module to use: the one ``transport`` belongs to, else httpx2 if installed (``auto``), else
    httpx."""
    if transport is not None:
        root = type(transport).__module__.split(".")[0]
        return importlib.import_module(root if root in ("httpx", "httpx2") else "httpx")
    if choice in ("auto", "httpx2"):
        try:
            return importlib.import_module("httpx2")
        except ImportError:
            if choice == "httpx2":
                raise
    return httpx


class OpenAICompatibleLLM(BaseLLM):
    """An OpenAI-compatible server over httpx (see the module docstring).

    ``base_url`` ends in ``/v1``; ``model`` is the served model name (``None``: ask ``/models``). ``transport``
    replaces the network (``httpx.MockTransport`` in tests); ``http`` picks the HTTP library (see the module
    docstring). ``prompt_logprobs``: whether the server supports
    ``echo`` with ``logprobs`` (vLLM does; the OpenAI API no longer does). ``extra_body`` is merged into every
    request (e.g. ``{"top_k": 20}`` for vLLM). ``add_special_tokens``: sent with text completions so the server
    tokenizes the prompt exactly as written, like the in-process backends (prompt templates write the model's BOS
    themselves; vLLM and SGLang would otherwise add a second one); ``None`` omits the field for servers that
    reject unknown parameters.
    """

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key: str | None = None,
        timeout_s: float = 600.0,
        connect_timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
        max_concurrency: int = 64,
        transport: Any = None,
        http: Literal["auto", "httpx", "httpx2"] = "auto",
        chat: bool = True,
        prompt_logprobs: bool = True,
        infill: bool = False,
        extra_body: dict[str, Any] | None = None,
        add_special_tokens: bool | None = False,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.add_special_tokens = add_special_tokens
        self.model = model
        self.retry = retry or RetryPolicy()
        self.max_concurrency = max_concurrency
        self.extra_body = dict(extra_body or {})
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        lib: Any = http_library(http, transport)
        self.http_library = lib.__name__
        self._transport_errors: tuple[type[Exception], ...] = (lib.TransportError,)
        self._client: Any = lib.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=lib.Timeout(timeout_s, connect=connect_timeout_s),
            limits=lib.Limits(max_connections=max_concurrency, max_keepalive_connections=max_concurrency),
            transport=transport,
        )
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._model_lock = asyncio.Lock()
        self._capabilities = Capabilities(
            backend="openai-compatible",
            chat=chat,
            infill=infill,
            prompt_logprobs=prompt_logprobs,
            logprobs=True,
            logits_processors=False,
            streaming=True,
            tool_calls=chat,
            notes=(f"server {self.base_url}",),
        )

    @classmethod
    def from_settings(
        cls, base_url: str, model: str | None, settings: LLMSettings, **options: Any
    ) -> OpenAICompatibleLLM:
        """Build from :class:`LLMSettings`: API key from ``api_key_env``, timeout, retries, concurrency, and
        ``strict_openai`` (send no vLLM/SGLang-only fields such as ``add_special_tokens``)."""
        options.setdefault("api_key", os.environ.get(settings.api_key_env) or None)
        options.setdefault("timeout_s", settings.request_timeout_s)
        options.setdefault("retry", RetryPolicy(max_retries=settings.max_retries))
        options.setdefault("max_concurrency", settings.max_concurrency)
        options.setdefault("add_special_tokens", None if settings.strict_openai else False)
        return cls(base_url, model, **options)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    # ---- public API ------------------------------------------------------------------------------------------

    async def _generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        await self._resolve_model()
        return list(await asyncio.gather(*(self._one(r) for r in requests)))

    async def list_models(self) -> list[str]:
        """The model names the server serves (``GET /models``)."""
        data = await self._request("GET", "/models", None)
        try:
            return [str(m["id"]) for m in data["data"]]
        except (KeyError, TypeError) as exc:
            raise LLMError(f"malformed /models response from {self.base_url}: {exc}") from None

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamDelta]:
        """Yield text deltas for one text or chat request as the server produces them."""
        if request.score_continuation is not None or isinstance(request.prompt, InfillPrompt):
            raise CapabilityError("streaming serves text and chat sampling requests only")
        await self._resolve_model()
        path, body = self._sampling_body(request)
        body["stream"] = True
        async with self._semaphore:
            async for event in self._stream_events(path, body):
                for choice in event.get("choices") or []:
                    if not isinstance(choice, dict):
                        continue
                    if "message" in choice or "delta" in choice:
                        text = str((choice.get("delta") or {}).get("content") or "")
                    else:
                        text = str(choice.get("text") or "")
                    reason = choice.get("finish_reason")
                    if text or reason:
                        yield StreamDelta(int(choice.get("index", 0)), text, _finish(reason) if reason else None)

    # ---- request building and parsing -------------------------------------------------------------------------

    async def _resolve_model(self) -> None:
        if self.model is not None:
            return
        async with self._model_lock:
            if self.model is None:
                models = await self.list_models()
                if not models:
                    raise LLMError(f"the server at {self.base_url} serves no model", hint="start it with a model")
                self.model = models[0]

    def _params_body(self, params: SamplingParams) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "n": params.n,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed
        return body

    def _sampling_body(self, request: GenerationRequest) -> tuple[str, dict[str, Any]]:
        params = request.params
        body = self._params_body(params)
        prompt = request.prompt
        if isinstance(prompt, list):
            body["messages"] = [m.openai() for m in prompt]
            if request.tools:
                body["tools"] = request.tools
                choice = request.tool_choice
                body["tool_choice"] = (
                    choice
                    if choice in ("auto", "required", "none")
                    else {"type": "function", "function": {"name": choice}}
                )
                if not request.parallel_tool_calls:
                    body["parallel_tool_calls"] = False
            if params.logprobs is not None:
                body["logprobs"] = True
                body["top_logprobs"] = params.logprobs
            body.update(self.extra_body)
            return "/chat/completions", body
        if isinstance(prompt, InfillPrompt):
            body["prompt"] = render_infill_text(prompt.prefix, prompt.suffix)
            body["stop"] = [*body.get("stop", []), CODEGEN2.end]
            body["skip_special_tokens"] = False
        else:
            body["prompt"] = prompt
            if self.add_special_tokens is not None:
                body["add_special_tokens"] = self.add_special_tokens
        if params.logprobs is not None:
            body["logprobs"] = params.logprobs
        body.update(self.extra_body)
        return "/completions", body

    async def _one(self, request: GenerationRequest) -> GenerationResult:
        if request.score_continuation is not None:
            return await self._score(request)
        path, body = self._sampling_body(request)
        data = await self._request("POST", path, body)
        n = request.params.n
        try:
            if path == "/chat/completions":
                chat = _ChatResponse.model_validate(data)
                completions = [self._chat_completion(c) for c in sorted(chat.choices, key=lambda c: c.index)]
                usage = chat.usage
            else:
                text = _TextResponse.model_validate(data)
                infill = isinstance(request.prompt, InfillPrompt)
                completions = [self._text_completion(c, infill) for c in sorted(text.choices, key=lambda c: c.index)]
                usage = text.usage
        except ValidationError as exc:
            raise LLMError(
                f"malformed response from {self.base_url}{path}: {_first_error(exc)}",
                hint="check that the URL points at an OpenAI-compatible server",
            ) from None
        if len(completions) != n:
            raise LLMError(f"server at {self.base_url} returned {len(completions)} choices for n={n}")
        _fill_token_counts(completions, usage)
        return GenerationResult(completions=completions, prompt_tokens=usage.prompt_tokens if usage else 0)

    @staticmethod
    def _text_completion(choice: _TextChoice, infill: bool) -> Completion:
        logprobs = None
        if choice.logprobs is not None:
            logprobs = [lp if lp is not None else 0.0 for lp in choice.logprobs.token_logprobs]
        finish: FinishReason = _finish(choice.finish_reason)
        text = choice.text
        if infill:
            cut = text.find(CODEGEN2.end)
            found = choice.stop_reason == CODEGEN2.end or cut >= 0
            text = text[:cut] if cut >= 0 else text.replace(CODEGEN2.eot, "")
            finish = "stop" if found else "unfinished"
        return Completion(text=text, finish_reason=finish, tokens=len(logprobs or []), logprobs=logprobs)

    @staticmethod
    def _chat_completion(choice: _ChatChoice) -> Completion:
        logprobs = None
        if choice.logprobs is not None and choice.logprobs.content is not None:
            logprobs = [t.logprob for t in choice.logprobs.content]
        calls = [
            ToolCall(
                id=c.id or f"call_{choice.index}_{k}",
                name=c.function.name,
                arguments=c.function.arguments
                if isinstance(c.function.arguments, str)
                else json.dumps(c.function.arguments),
            )
            for k, c in enumerate(choice.message.tool_calls or [])
        ]
        return Completion(
            text=choice.message.content or "",
            finish_reason=_finish(choice.finish_reason),
            tokens=len(logprobs or []),
            logprobs=logprobs,
            tool_calls=calls,
        )

    async def _score(self, request: GenerationRequest) -> GenerationResult:
        if not isinstance(request.prompt, str):
            raise CapabilityError(
                "the OpenAI-compatible backend scores text prompts only (echo works on /completions)",
                hint="render the chat prompt to text, or use the transformers or vLLM in-process backend",
            )
        assert request.score_continuation is not None
        full = request.prompt + request.score_continuation
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": full,
            "max_tokens": 1,
            "temperature": 0.0,
            "echo": True,
            "logprobs": 0,
        }
        if self.add_special_tokens is not None:
            body["add_special_tokens"] = self.add_special_tokens
        body.update(self.extra_body)
        data = await self._request("POST", "/completions", body)
        try:
            response = _TextResponse.model_validate(data)
            lp = response.choices[0].logprobs
        except (ValidationError, IndexError) as exc:
            raise LLMError(f"malformed scoring response from {self.base_url}: {exc}") from None
        if lp is None or not lp.text_offset or len(lp.text_offset) != len(lp.token_logprobs):
            raise LLMError(
                f"the server at {self.base_url} returned no prompt log-probs for echo=true",
                hint="this server does not support prompt scoring; use vLLM or a local backend",
            )
        start, end = len(request.prompt), len(full)
        picked: list[float] = []
        for offset, token, value in zip(lp.text_offset, lp.tokens, lp.token_logprobs, strict=False):
            # a token belongs to the continuation if it covers any of its characters
            if offset < end and offset + max(len(token), 1) > start and value is not None:
                picked.append(value)
        if not picked:
            raise LLMError("the echoed tokens did not cover the continuation", hint="check the continuation text")
        prompt_tokens = sum(1 for o in lp.text_offset if o < start)
        return GenerationResult(prompt_tokens=prompt_tokens, continuation_logprobs=picked)

    # ---- transport with retries -------------------------------------------------------------------------------

    async def _request(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        attempt = 0
        while True:
            async with self._semaphore:
                try:
                    response = await self._client.request(method, path, json=body)
                    error: Exception | None = None
                except self._transport_errors as exc:  # connect errors, resets, timeouts
                    response, error = None, exc
            if response is not None and response.status_code < 400:
                try:
                    return response.json()
                except json.JSONDecodeError:
                    raise LLMError(
                        f"malformed response from {self.base_url}{path}: not JSON: {response.text[:200]!r}",
                        hint="check that the URL points at an OpenAI-compatible server",
                    ) from None
            retryable = response is None or response.status_code in RETRY_STATUSES or response.status_code >= 500
            if not retryable or attempt >= self.retry.max_retries:
                raise self._failure(path, response, error, attempt)
            retry_after = response.headers.get("retry-after") if response is not None else None
            await asyncio.sleep(self.retry.delay(attempt, retry_after))
            attempt += 1

    async def _stream_events(self, path: str, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        attempt = 0
        started = False  # once events were yielded, a retry would repeat them: fail instead
        while True:
            try:
                async with self._client.stream("POST", path, json=body) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        retryable = response.status_code in RETRY_STATUSES or response.status_code >= 500
                        if not retryable or attempt >= self.retry.max_retries:
                            raise self._failure(path, response, None, attempt)
                    else:
                        async for line in response.aiter_lines():
                            if not line.startswith("data:"):
                                continue
                            payload = line[5:].strip()
                            if payload == "[DONE]":
                                return
                            try:
                                event = json.loads(payload)
                            except json.JSONDecodeError:
                                raise LLMError(
                                    f"malformed stream event from {self.base_url}: {payload[:200]!r}"
                                ) from None
                            if isinstance(event, dict):
                                started = True
                                yield event
                        return
            except self._transport_errors as exc:
                if started or attempt >= self.retry.max_retries:
                    raise self._failure(path, None, exc, attempt) from None
            await asyncio.sleep(self.retry.delay(attempt))
            attempt += 1

    def _failure(self, path: str, response: Any, error: Exception | None, attempt: int) -> LLMError:
        url = f"{self.base_url}{path}"
        tries = f" after {attempt + 1} attempts" if attempt else ""
        if response is None:
            kind = type(error).__name__ if error else "error"
            return LLMError(
                f"could not reach {url}{tries}: {kind}: {error}",
                hint="check that the server is running and the URL (http://host:port/v1) is right",
            )
        detail = _server_message(response)
        status = response.status_code
        hints = {
            401: "set the API key in the environment variable named by llm.api_key_env (default OPENAI_API_KEY)",
            403: "the API key is not allowed to use this model",
            404: f"check the URL and the model name (#name); served models: GET {self.base_url}/models",
            429: "the server is rate limiting; lower llm.max_concurrency or retry later",
        }
        hint = hints.get(status) or (
            "check the request parameters against the server's limits" if status < 500 else "check the server's log"
        )
        return LLMError(f"{url} answered HTTP {status}{tries}: {detail}", hint=hint)


def _server_message(response: Any) -> str:
    try:
        data = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return str(response.text[:300] or response.reason_phrase)
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict) and "message" in error:
            return str(error["message"])[:500]
        if isinstance(data.get("detail"), str):
            return str(data["detail"])[:500]
    return json.dumps(data)[:300]


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"


def _fill_token_counts(completions: list[Completion], usage: _Usage | None) -> None:
    """Per-sample token counts: from log-probs when present, else the usage total split over the samples."""
    if usage is None or all(c.tokens for c in completions):
        return
    missing = [c for c in completions if not c.tokens]
    known = sum(c.tokens for c in completions)
    remaining = max(0, usage.completion_tokens - known)
    share, extra = divmod(remaining, len(missing))
    for k, c in enumerate(missing):
        c.tokens = share + (1 if k < extra else 0)
