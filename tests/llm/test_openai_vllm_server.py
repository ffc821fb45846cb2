"""The OpenAI-compatible backend against a real vLLM CPU server on 127.0.0.1 serving the tiny Llama."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from malot.config import LLMSettings, Settings
from malot.errors import LLMError
from malot.llm import ChatMessage, GenerationRequest, SamplingParams, load_llm
from malot.llm.doctor import checks
from malot.llm.hf_backend import TransformersLLM
from malot.llm.openai_backend import OpenAICompatibleLLM
from malot.testing.vllm_server import LocalVllmServer

pytestmark = pytest.mark.slow


def alnum_window(text: str) -> str:
    for i in range(max(1, len(text) // 3), len(text) - 1):
        window = text[i : i + 2]
        if window.isascii() and window.isalnum():
            return window
    raise AssertionError(f"no alphanumeric window in {text!r}")


async def test_completions_and_chat_with_n_logprobs_and_seed(vllm_server: LocalVllmServer) -> None:
    async with load_llm(vllm_server.model_string) as llm:
        assert isinstance(llm, OpenAICompatibleLLM)
        params = SamplingParams(n=4, temperature=1.0, max_tokens=10, logprobs=0, seed=3)
        chat = [ChatMessage(role="user", content="Prove 1 + 1 = 2.")]
        text, conversation, again = await llm.generate(
            [
                GenerationRequest(prompt="theorem foo (a : ℕ) :", params=params),
                GenerationRequest(prompt=chat, params=params),
                GenerationRequest(prompt="theorem foo (a : ℕ) :", params=params),
            ]
        )
    for result in (text, conversation):
        assert len(result.completions) == 4
        assert result.prompt_tokens > 0
        for c in result.completions:
            assert c.logprobs is not None and len(c.logprobs) == c.tokens
            assert 1 <= c.tokens <= 10 and all(lp <= 0 for lp in c.logprobs)
            assert c.finish_reason in ("stop", "length")
    assert len(set(text.texts)) > 1
    assert again.texts == text.texts, "the same seed gives the same samples"
    assert conversation.prompt_tokens > text.prompt_tokens  # the chat template adds turn markers


async def test_stop_strings_and_streaming(vllm_server: LocalVllmServer) -> None:
    async with load_llm(vllm_server.model_string) as llm:
        assert isinstance(llm, OpenAICompatibleLLM)
        greedy = SamplingParams(temperature=0.0, max_tokens=24)
        (full,) = await llm.generate([GenerationRequest(prompt="lemma bar :", params=greedy)])
        text = full.completions[0].text
        stop = alnum_window(text)
        cut_params = SamplingParams(temperature=0.0, max_tokens=24, stop=[stop])
        (cut,) = await llm.generate([GenerationRequest(prompt="lemma bar :", params=cut_params)])
        assert cut.completions[0].text == text[: text.find(stop)]
        assert cut.completions[0].finish_reason == "stop"
        deltas = [d async for d in llm.stream(GenerationRequest(prompt="lemma bar :", params=greedy))]
        assert len(deltas) > 1
        assert "".join(d.text for d in deltas) == text
        assert deltas[-1].finish_reason == "length"
        chat = GenerationRequest(prompt=[ChatMessage(role="user", content="hi")], params=SamplingParams(n=2))
        chat_deltas = [d async for d in llm.stream(chat)]
        assert {d.index for d in chat_deltas} == {0, 1}


async def test_echo_scoring_matches_the_transformers_backend(
    vllm_server: LocalVllmServer, hf_llama: TransformersLLM
) -> None:
    prompt, continuation = "theorem foo (n : ℕ) :", " n + 0 = n := by simp"
    async with load_llm(vllm_server.base_url) as server:  # no #name: the served model is discovered
        (remote,) = await server.generate([GenerationRequest(prompt=prompt, score_continuation=continuation)])
    (here,) = await hf_llama.generate([GenerationRequest(prompt=prompt, score_continuation=continuation)])
    assert remote.continuation_logprobs == pytest.approx(here.continuation_logprobs, abs=1e-3)
    assert remote.prompt_tokens == here.prompt_tokens


async def test_server_4xx_is_a_clear_error(vllm_server: LocalVllmServer) -> None:
    async with load_llm(vllm_server.model_string) as llm:
        with pytest.raises(LLMError, match=r"HTTP 400.*(context|max_tokens|maximum).*request parameters"):
            await llm.complete("theorem", max_tokens=5000)
    async with load_llm(f"{vllm_server.base_url}#no-such-model") as wrong:
        with pytest.raises(LLMError, match=r"HTTP 404.*model name"):
            await wrong.complete("theorem")


def test_overhead_benchmark_writes_its_figures(vllm_server: LocalVllmServer, tmp_path: Path) -> None:
    out = tmp_path / "llm_overhead.json"
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "llm_overhead.py"
    argv = [sys.executable, str(script), "--server-url", vllm_server.model_string, "--requests", "8"]
    argv += ["--concurrency", "4", "--repeats", "1", "--out", str(out)]
    subprocess.run(argv, check=True, capture_output=True, timeout=120)
    data = json.loads(out.read_text(encoding="utf-8"))
    assert set(data) == {"malot_requests_per_second", "openai_requests_per_second", "overhead_ratio", "details"}
    malot_rps, openai_rps = data["malot_requests_per_second"], data["openai_requests_per_second"]
    assert malot_rps > 0 and openai_rps > 0
    assert data["overhead_ratio"] == pytest.approx(openai_rps / malot_rps)
    assert data["details"]["same_greedy_text"] is True


def doctor_by_name(settings: Settings) -> dict[str, tuple[str, str]]:
    return {c.name: (c.status, c.detail) for c in checks(settings)}


def test_doctor_reaches_the_vllm_server(vllm_server: LocalVllmServer) -> None:
    found = doctor_by_name(Settings(llm=LLMSettings(model=vllm_server.model_string)))
    assert found[f"model {vllm_server.model_string}"] == ("ok", "reachable; serves tiny")
    wrong = f"{vllm_server.base_url}#other"
    assert doctor_by_name(Settings(llm=LLMSettings(model=wrong)))[f"model {wrong}"][0] == "error"


def test_cli_generate_against_the_server(vllm_server: LocalVllmServer, capsys: pytest.CaptureFixture[str]) -> None:
    from malot.cli.app import main

    argv = ["llm", "generate", "--model", vllm_server.model_string, "-n", "4", "--max-tokens", "6", "--json"]
    assert main([*argv, "--chat", "Prove 1 + 1 = 2."]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["completions"]) == 4 and result["prompt_tokens"] > 0
    assert main(["llm", "score", "--model", vllm_server.model_string, "--json", "theorem", " foo"]) == 0
    assert json.loads(capsys.readouterr().out)["total"] < 0
