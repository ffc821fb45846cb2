"""The vLLM in-process backend (AsyncLLM engine) on vLLM's CPU build with the tiny Llama.

One engine start serves every check (starting it dominates the time on 2 cores)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from malot.config import LLMSettings, VllmEngineSettings
from malot.errors import CapabilityError
from malot.llm import ChatMessage, GenerationRequest, InfillPrompt, SamplingParams, load_llm
from malot.llm.hf_backend import TransformersLLM
from malot.llm.vllm_backend import VllmLLM, engine_args_from_settings

pytestmark = pytest.mark.slow


def test_engine_options_are_passed_through() -> None:
    engine = VllmEngineSettings(
        tensor_parallel_size=2,
        dtype="bfloat16",
        max_model_len=4096,
        gpu_memory_utilization=0.5,
        enforce_eager=True,
        engine_args={"swap_space": 2, "kv_cache_memory_bytes": 1},
    )
    args = engine_args_from_settings("m", engine, kv_cache_memory_bytes=123)
    assert args["swap_space"] == 2
    assert args["tensor_parallel_size"] == 2 and args["dtype"] == "bfloat16" and args["max_model_len"] == 4096
    assert args["gpu_memory_utilization"] == 0.5 and args["enforce_eager"] is True
    assert args["enable_prefix_caching"] is True and args["kv_cache_memory_bytes"] == 123


async def test_in_process_engine(tiny_llama: Path, hf_llama: TransformersLLM) -> None:
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    settings = LLMSettings(
        model=str(tiny_llama),
        backend="vllm",
        vllm=VllmEngineSettings(
            dtype="float32",
            max_model_len=512,
            enforce_eager=True,
            engine_args={
                "distributed_executor_backend": "uni",
                # compact JSON for schema-constrained tool calls (a random model would pad them with whitespace)
                "structured_outputs_config": {"backend": "xgrammar", "disable_any_whitespace": True},
            },
        ),
    )
    llm = load_llm(settings)
    assert isinstance(llm, VllmLLM)
    async with llm:
        caps = llm.capabilities
        assert caps.prompt_logprobs and caps.chat and not caps.logits_processors and caps.max_context == 512
        prompt, continuation = "theorem foo (n : ℕ) :", " n + 0 = n := by simp"
        sample = SamplingParams(n=4, temperature=1.0, max_tokens=10, logprobs=0, seed=5)
        greedy = SamplingParams(temperature=0.0, max_tokens=24)
        chat = [ChatMessage(role="user", content="Prove it.")]
        text, conversation, scored, full, hole = await llm.generate(
            [
                GenerationRequest(prompt="theorem foo (a : ℕ) :", params=sample),
                GenerationRequest(prompt=chat, params=SamplingParams(n=2, max_tokens=6)),
                GenerationRequest(prompt=prompt, score_continuation=continuation),
                GenerationRequest(prompt="lemma bar :", params=greedy),
                GenerationRequest(prompt=InfillPrompt(prefix="def f(x):", suffix="return y"), params=greedy),
            ]
        )
        assert len(text.completions) == 4 and len(set(text.texts)) > 1
        for c in text.completions:
            assert c.logprobs is not None and len(c.logprobs) == c.tokens <= 10
        assert len(conversation.completions) == 2 and conversation.prompt_tokens > 5
        # the same numbers as the transformers backend computes from the same weights
        (reference,) = await hf_llama.generate([GenerationRequest(prompt=prompt, score_continuation=continuation)])
        assert scored.continuation_logprobs == pytest.approx(reference.continuation_logprobs, abs=1e-3)
        # stop strings: cut where the greedy text had the stop string
        greedy_text = full.completions[0].text
        windows = (greedy_text[i : i + 2] for i in range(len(greedy_text) // 3, len(greedy_text) - 1))
        stop = next(w for w in windows if w.isascii() and w.isalnum())
        stop_params = SamplingParams(temperature=0.0, max_tokens=24, stop=[stop])
        (cut,) = await llm.generate([GenerationRequest(prompt="lemma bar :", params=stop_params)])
        assert cut.completions[0].text == greedy_text[: greedy_text.find(stop)]
        assert cut.completions[0].finish_reason == "stop"
        assert hole.completions[0].finish_reason in ("stop", "unfinished")
        with pytest.raises(CapabilityError, match="logits processors"):
            await llm.generate([GenerationRequest(prompt="x", logits_processors=[lambda ids, scores: scores])])
        await _tool_calls_in_process(llm)
    assert llm.engine is None


async def _tool_calls_in_process(llm: VllmLLM) -> None:
    """Tool calling on the engine: required and named choices are JSON-schema constrained, and the loop runs them."""
    from malot.agents import ToolAgent
    from malot.tools import RegistrySource
    from tests.agents import tool_fixtures

    assert llm.capabilities.tool_calls
    tools = tool_fixtures.REGISTRY.openai_tools(["pick"])
    ask = [ChatMessage(role="user", content="Pick a color.")]
    params = SamplingParams(temperature=1.0, max_tokens=48, seed=1)
    required, named = await llm.generate(
        [
            GenerationRequest(prompt=ask, params=params, tools=tools, tool_choice=c, parallel_tool_calls=False)
            for c in ("required", "pick")
        ]
    )
    for result in (required, named):
        (call,) = result.completions[0].tool_calls
        assert call.name == "pick" and json.loads(call.arguments)["color"] in ("red", "green")
    source = RegistrySource(tool_fixtures.REGISTRY, names=["pick"])
    agent = ToolAgent(llm, source, tool_choice="required", parallel_tool_calls=False, max_steps=2, sampling=params)
    outcome = await agent.run("Pick a color.")
    assert [(r.tool, r.error) for r in outcome.tool_calls] == [("pick", None)]
