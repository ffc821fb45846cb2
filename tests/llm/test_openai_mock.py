"""The OpenAI-compatible backend against ``httpx.MockTransport`` (a double for the server): request bodies,
parsing, retries on 429/5xx/connection errors and timeouts, clear 4xx errors, malformed responses, concurrency."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from malot.errors import CapabilityError, LLMError
from malot.llm import ChatMessage, GenerationRequest, InfillPrompt, SamplingParams, load_llm
from malot.llm.openai_backend import OpenAICompatibleLLM, RetryPolicy

FAST = RetryPolicy(max_retries=3, base_s=0.001, max_s=0.01)


def text_response(texts: list[str], finish: str = "stop", **extra: Any) -> dict[str, Any]:
    return {
        "choices": [{"index": i, "text": t, "finish_reason": finish, **extra} for i, t in enumerate(texts)],
        "usage": {"prompt_tokens": 3, "completion_tokens": 7 * len(texts)},
    }


def make(handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> OpenAICompatibleLLM:
    kwargs.setdefault("retry", FAST)
    return OpenAICompatibleLLM("http://mock/v1", "m", transport=httpx.MockTransport(handler), **kwargs)


async def test_completion_body_and_parsing() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/completions"
        assert request.headers["authorization"] == "Bearer k"
        seen.append(json.loads(request.content))
        return httpx.Response(200, json=text_response(["a", "b"], finish="length"))

    async with make(handler, api_key="k") as llm:
        params = SamplingParams(n=2, temperature=0.5, top_p=0.9, max_tokens=9, stop=["\n"], seed=4)
        (result,) = await llm.generate([GenerationRequest(prompt="p", params=params)])
    expected = {"model": "m", "prompt": "p", "n": 2, "temperature": 0.5, "top_p": 0.9, "max_tokens": 9}
    # the prompt is tokenized as written: templates write the model's BOS themselves
    assert seen[0] == {**expected, "stop": ["\n"], "seed": 4, "add_special_tokens": False}
    assert result.texts == ["a", "b"]
    assert [c.finish_reason for c in result.completions] == ["length", "length"]
    assert [c.tokens for c in result.completions] == [7, 7]
    assert result.prompt_tokens == 3


async def test_add_special_tokens_can_be_omitted_for_strict_servers() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json=text_response(["a"]))

    async with make(handler, add_special_tokens=None) as llm:
        await llm.generate([GenerationRequest(prompt="p")])
    assert "add_special_tokens" not in seen[0]


async def test_chat_body_logprobs_and_model_discovery() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": "served"}]})
        body = json.loads(request.content)
        assert body["model"] == "served" and body["messages"][0] == {"role": "user", "content": "hi"}
        assert body["logprobs"] is True and body["top_logprobs"] == 0
        content = [{"token": "x", "logprob": -0.5}, {"token": "y", "logprob": -1.0}]
        choice = {"index": 0, "message": {"content": "xy"}, "finish_reason": "stop", "logprobs": {"content": content}}
        return httpx.Response(200, json={"choices": [choice], "usage": {"prompt_tokens": 2, "completion_tokens": 2}})

    llm = load_llm("http://mock/v1", transport=httpx.MockTransport(handler))
    async with llm:
        messages = [ChatMessage(role="user", content="hi")]
        (result,) = await llm.generate([GenerationRequest(prompt=messages, params=SamplingParams(logprobs=0))])
    assert result.completions[0].text == "xy"
    assert result.completions[0].logprobs == [-0.5, -1.0]
    assert result.completions[0].cumulative_logprob == pytest.approx(-1.5)


async def test_scoring_picks_the_continuation_tokens() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        assert body["echo"] is True and body["prompt"] == "ab cd" and body["logprobs"] == 0
        lp = {"tokens": ["ab", " c", "d", "!"], "token_logprobs": [None, -1.0, -2.0, -9.0], "text_offset": [0, 2, 4, 5]}
        return httpx.Response(200, json={"choices": [{"text": "ab cd!", "logprobs": lp}]})

    async with make(handler) as llm:
        assert await llm.score("ab", " cd") == pytest.approx(-3.0)
        with pytest.raises(CapabilityError, match="text prompts only"):
            await llm.score([ChatMessage(role="user", content="ab")], " cd")


async def test_infill_over_http_cuts_at_eom() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        assert body["prompt"] == "pre<mask_1>suf<|endoftext|><sep><mask_1>"
        assert "<eom>" in body["stop"] and body["skip_special_tokens"] is False
        return httpx.Response(
            200,
            json={
                "choices": [
                    {"index": 0, "text": "mid", "finish_reason": "stop", "stop_reason": "<eom>"},
                    {"index": 1, "text": "mi", "finish_reason": "length"},
                ]
            },
        )

    async with make(handler, infill=True) as llm:
        request = GenerationRequest(prompt=InfillPrompt(prefix="pre", suffix="suf"), params=SamplingParams(n=2))
        (result,) = await llm.generate([request])
    assert [(c.text, c.finish_reason) for c in result.completions] == [("mid", "stop"), ("mi", "unfinished")]
    async with make(handler) as plain:
        with pytest.raises(CapabilityError, match="infilling"):
            await plain.generate([request])


async def test_retries_429_and_5xx_then_succeeds() -> None:
    statuses = [429, 503, 500]
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if statuses:
            return httpx.Response(statuses.pop(0), headers={"retry-after": "0"}, json={"error": {"message": "busy"}})
        return httpx.Response(200, json=text_response(["ok"]))

    async with make(handler) as llm:
        assert await llm.complete("p") == ["ok"]
    assert calls == 4


async def test_retries_exhausted_reports_status_and_message() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"error": {"message": "overloaded"}})

    async with make(handler) as llm:
        with pytest.raises(LLMError, match=r"HTTP 503 after 4 attempts: overloaded"):
            await llm.complete("p")


async def test_connection_errors_and_timeouts_are_retried() -> None:
    failures: list[Exception] = [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        if failures:
            raise failures.pop(0)
        return httpx.Response(200, json=text_response(["ok"]))

    async with make(handler) as llm:
        assert await llm.complete("p") == ["ok"]

    def always_down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    async with make(always_down) as llm:
        with pytest.raises(LLMError, match=r"could not reach http://mock/v1/completions after 4 attempts"):
            await llm.complete("p")


async def test_read_timeout_against_a_real_silent_socket() -> None:
    """MockTransport cannot time out, so a loopback server that accepts and never answers plays the slow server."""
    accepted = 0

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        await reader.read(1 << 16)
        await asyncio.sleep(5)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        llm = OpenAICompatibleLLM(f"http://127.0.0.1:{port}/v1", "m", timeout_s=0.2, retry=FAST)
        async with llm:
            with pytest.raises(LLMError, match=r"after 4 attempts: ReadTimeout"):
                await llm.complete("p")
    finally:
        server.close()
    assert accepted == 4


@pytest.mark.parametrize(
    ("status", "hint"),
    [(400, "request parameters"), (401, "API key"), (404, "model name"), (422, "request parameters")],
)
async def test_4xx_fails_at_once_with_the_server_message(status: int, hint: str) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(status, json={"error": {"message": "maximum context length is 512"}})

    async with make(handler) as llm:
        with pytest.raises(LLMError, match=f"HTTP {status}: maximum context length is 512.*{hint}"):
            await llm.complete("p")
    assert calls == 1


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, text="<html>not json</html>"),
        httpx.Response(200, json={"nope": 1}),
        httpx.Response(200, json={"choices": [{"index": 0}]}),
        httpx.Response(200, json=text_response(["only one"])),
    ],
)
async def test_malformed_responses_are_clear_errors(response: httpx.Response) -> None:
    async with make(lambda request: response) as llm:
        with pytest.raises(LLMError, match=r"malformed|choices for n=2"):
            await llm.complete("p", n=2)


async def test_concurrency_limit_is_respected() -> None:
    active = peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.01)
        active -= 1
        return httpx.Response(200, json=text_response(["ok"]))

    async with make(handler, max_concurrency=3) as llm:
        results = await llm.generate([GenerationRequest(prompt=f"p{i}") for i in range(12)])
    assert len(results) == 12 and peak == 3


async def test_streaming_parses_server_sent_events() -> None:
    events = [
        {"choices": [{"index": 0, "text": "he", "finish_reason": None}]},
        {"choices": [{"index": 0, "text": "llo", "finish_reason": "length"}]},
    ]
    sse = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"

    def handler(request: httpx.Request) -> httpx.Response:
        assert json.loads(request.content)["stream"] is True
        return httpx.Response(200, text=sse, headers={"content-type": "text/event-stream"})

    async with make(handler) as llm:
        deltas = [d async for d in llm.stream(GenerationRequest(prompt="p"))]
    assert "".join(d.text for d in deltas) == "hello"
    assert deltas[-1].finish_reason == "length"


async def test_httpx2_is_preferred_and_behaves_the_same() -> None:
    import httpx2  # installed with openai (dev extra); without it malot falls back to httpx

    statuses = [429, 502]

    def handler(request: Any) -> Any:
        if statuses:
            return httpx2.Response(statuses.pop(0), json={"error": {"message": "busy"}})
        if json.loads(request.content)["prompt"] == "bad":
            return httpx2.Response(400, json={"error": {"message": "bad prompt"}})
        return httpx2.Response(200, json=text_response(["ok"]))

    assert OpenAICompatibleLLM("http://mock/v1", "m").http_library == "httpx2"
    assert OpenAICompatibleLLM("http://mock/v1", "m", http="httpx").http_library == "httpx"
    async with OpenAICompatibleLLM("http://mock/v1", "m", transport=httpx2.MockTransport(handler), retry=FAST) as llm:
        assert llm.http_library == "httpx2"
        assert await llm.complete("p") == ["ok"]
        with pytest.raises(LLMError, match="HTTP 400: bad prompt"):
            await llm.complete("bad")
