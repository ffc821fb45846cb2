"""The transformers backend on the tiny offline models: sampling, batching, stop strings, log-probs checked by hand
against the model's logits, logits processors, chat templates, CodeGen2 infilling and context limits."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from malot.errors import LLMError
from malot.llm import ChatMessage, GenerationRequest, InfillPrompt, SamplingParams, load_llm
from malot.llm.hf_backend import TransformersLLM
from malot.llm.infill import cut_infill_output, render_infill_text, trim_infill_ids


@pytest.fixture
def llama(hf_llama: TransformersLLM) -> TransformersLLM:
    """The session's tiny Llama on the transformers backend."""
    return hf_llama


async def test_load_llm_picks_the_transformers_backend_on_cpu(tiny_llama: Path) -> None:
    from malot.llm.vllm_backend import VllmLLM

    llm = load_llm(str(tiny_llama))  # backend "auto": vLLM on a CUDA GPU, else transformers
    assert isinstance(llm, VllmLLM if torch.cuda.is_available() else TransformersLLM)


def alnum_window(text: str) -> str:
    """Two consecutive ASCII letters/digits from the middle of ``text`` (a stop string that surely occurs)."""
    for i in range(max(1, len(text) // 3), len(text) - 1):
        window = text[i : i + 2]
        if window.isascii() and window.isalnum():
            return window
    raise AssertionError(f"no alphanumeric window in {text!r}")


async def test_sampling_n_seed_and_batching(llama: TransformersLLM) -> None:
    params = SamplingParams(n=3, temperature=1.0, max_tokens=12, seed=7, logprobs=0)
    (a,) = await llama.generate([GenerationRequest(prompt="theorem foo", params=params)])
    (b,) = await llama.generate([GenerationRequest(prompt="theorem foo", params=params)])
    assert a.texts == b.texts, "the same seed must give the same samples"
    assert len(a.completions) == 3 and len(set(a.texts)) > 1
    for c in a.completions:
        assert c.logprobs is not None and len(c.logprobs) == c.tokens <= 12
        assert all(lp <= 0.0 for lp in c.logprobs)
    greedy = SamplingParams(temperature=0.0, max_tokens=10)
    prompts = ["theorem foo (a b : ℕ) : a + b = b + a := by", "lemma x", "def f(x):\n    return"]
    batched = await llama.generate([GenerationRequest(prompt=p, params=greedy) for p in prompts])
    single = [(await llama.generate([GenerationRequest(prompt=p, params=greedy)]))[0] for p in prompts]
    assert [r.texts for r in batched] == [r.texts for r in single], "left-padded batching must not change outputs"
    assert [r.prompt_tokens for r in batched] == [len(llama.tokenizer(p)["input_ids"]) for p in prompts]


async def test_stop_strings_cut_the_text(llama: TransformersLLM) -> None:
    greedy = SamplingParams(temperature=0.0, max_tokens=24)
    (full,) = await llama.generate([GenerationRequest(prompt="theorem bar :", params=greedy)])
    text = full.completions[0].text
    stop = alnum_window(text)
    params = SamplingParams(temperature=0.0, max_tokens=24, stop=[stop])
    (cut,) = await llama.generate([GenerationRequest(prompt="theorem bar :", params=params)])
    assert cut.completions[0].text == text[: text.find(stop)]
    assert cut.completions[0].finish_reason == "stop"
    assert cut.completions[0].tokens < full.completions[0].tokens
    assert full.completions[0].finish_reason == "length"


async def test_prompt_logprobs_equal_a_hand_computation(llama: TransformersLLM) -> None:
    prompt, continuation = "theorem foo (n : ℕ) :", " n + 0 = n := by simp"
    (result,) = await llama.generate([GenerationRequest(prompt=prompt, score_continuation=continuation)])
    tok, model = llama.tokenizer, llama.model
    p_ids = tok(prompt)["input_ids"]
    c_ids = tok(continuation, add_special_tokens=False)["input_ids"]
    ids = p_ids + c_ids
    expected = []
    with torch.inference_mode():
        for k in range(len(p_ids), len(ids)):  # one forward pass per position, no batching or padding involved
            logits = model(input_ids=torch.tensor([ids[:k]])).logits[0, -1]
            expected.append(float(torch.log_softmax(logits.double(), dim=-1)[ids[k]]))
    assert result.completions == []
    assert result.prompt_tokens == len(p_ids)
    assert result.continuation_logprobs == pytest.approx(expected, abs=1e-4)
    # scoring in a batch with a different-length prompt (right padding) gives the same numbers
    both = await llama.generate(
        [
            GenerationRequest(prompt="x", score_continuation=" y z w v u"),
            GenerationRequest(prompt=prompt, score_continuation=continuation),
        ]
    )
    assert both[1].continuation_logprobs == pytest.approx(expected, abs=1e-4)
    assert await llama.score(prompt, continuation) == pytest.approx(sum(expected), abs=1e-3)


class ForceToken:
    """A logits processor that allows one token only, and records the shapes it saw."""

    def __init__(self, token_id: int) -> None:
        self.token_id = token_id
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        self.shapes.append(tuple(scores.shape))
        forced = torch.full_like(scores, float("-inf"))
        forced[:, self.token_id] = 0.0
        return forced


async def test_logits_processors_per_request_and_per_backend(tiny_llama: Path, llama: TransformersLLM) -> None:
    token = llama.tokenizer.convert_tokens_to_ids("Ġsimp") if "Ġsimp" in llama.tokenizer.get_vocab() else 300
    word = llama.tokenizer.decode([token])
    force = ForceToken(token)
    params = SamplingParams(n=2, max_tokens=4, temperature=1.0)
    (result,) = await llama.generate([GenerationRequest(prompt="theorem", params=params, logits_processors=[force])])
    assert result.texts == [word * 4, word * 4]
    assert force.shapes[0] == (2, llama.model.config.vocab_size)  # one row per sample
    backend_wide = ForceToken(token)
    async with TransformersLLM(tiny_llama, logits_processors=[backend_wide]) as other:
        assert await other.complete("lemma", max_tokens=3) == [word * 3]
    assert len(backend_wide.shapes) == 3


async def test_cancellation_stops_the_running_generation(llama: TransformersLLM) -> None:
    steps = 0

    def slow(input_ids: Any, scores: Any) -> Any:
        nonlocal steps
        steps += 1
        time.sleep(0.02)
        return scores

    request = GenerationRequest(prompt="theorem", params=SamplingParams(max_tokens=400), logits_processors=[slow])
    started = time.perf_counter()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(llama.generate([request]), timeout=0.3)
    assert time.perf_counter() - started < 5.0  # far less than the ~8 s the 400 slow steps would take
    stopped_at = steps
    assert await llama.complete("lemma", max_tokens=2) is not None  # the model is free again
    assert steps == stopped_at and stopped_at < 400


async def test_chat_template_and_context_limit(llama: TransformersLLM) -> None:
    messages = [ChatMessage(role="system", content="You prove."), ChatMessage(role="user", content="1 + 1 = 2")]
    (result,) = await llama.generate([GenerationRequest(prompt=messages, params=SamplingParams(max_tokens=5))])
    rendered = llama.tokenizer.apply_chat_template(
        [m.model_dump() for m in messages], add_generation_prompt=True, tokenize=False
    )
    assert rendered.endswith("<|im_start|>assistant\n")
    assert result.prompt_tokens == len(llama.tokenizer(rendered, add_special_tokens=False)["input_ids"])
    assert llama.capabilities.chat and llama.capabilities.prompt_logprobs and llama.capabilities.logits_processors
    with pytest.raises(LLMError, match="exceeds the context of 1024 tokens"):
        await llama.complete("theorem " * 600, max_tokens=600)


async def test_codegen_infilling(tiny_codegen: Path) -> None:
    async with load_llm(str(tiny_codegen), backend="hf") as codegen:
        assert codegen.capabilities.infill
        assert isinstance(codegen, TransformersLLM)
        tok = codegen.tokenizer
        hole = InfillPrompt(prefix="def add(a, b):\n    ", suffix="\n    return c\n")
        (free,) = await codegen.generate([GenerationRequest(prompt=hole, params=SamplingParams(n=2, max_tokens=6))])
        # the random model does not emit <eom>: the output is unfinished, as the issue asks
        assert [c.finish_reason for c in free.completions] == ["unfinished", "unfinished"]
        expected_ids = tok(render_infill_text(hole.prefix, hole.suffix), add_special_tokens=False)["input_ids"]
        assert free.prompt_tokens == len(expected_ids)

        eom = tok.convert_tokens_to_ids("<eom>")
        body = tok.convert_tokens_to_ids("Ġc")

        def write_c_then_end(input_ids: Any, scores: Any) -> Any:
            forced = torch.full_like(scores, float("-inf"))
            forced[:, body if input_ids.shape[1] - len(expected_ids) < 2 else eom] = 0.0
            return forced

        params = SamplingParams(max_tokens=6)
        request = GenerationRequest(prompt=hole, params=params, logits_processors=[write_c_then_end])
        (done,) = await codegen.generate([request])
        assert done.completions[0].text == tok.decode([body, body])
        assert done.completions[0].finish_reason == "stop"
        assert done.completions[0].tokens == 3

        long = InfillPrompt(prefix="x = 1\n" * 400, suffix="y = 2\n" * 400)
        (trimmed,) = await codegen.generate([GenerationRequest(prompt=long, params=SamplingParams(max_tokens=50))])
        assert trimmed.prompt_tokens <= 1024 - 50


def test_infill_trimming_and_cutting() -> None:
    assert trim_infill_ids([1, 2, 3], [4, 5], 10) == ([1, 2, 3], [4, 5])
    assert trim_infill_ids(list(range(10)), list(range(100, 110)), 6) == ([7, 8, 9], [100, 101, 102])
    assert trim_infill_ids(list(range(10)), [100], 6) == ([5, 6, 7, 8, 9], [100])
    assert trim_infill_ids([1], list(range(100, 110)), 6) == ([1], [100, 101, 102, 103, 104])
    assert cut_infill_output("abc<eom>rest") == ("abc", True)
    assert cut_infill_output("abc<|endoftext|>") == ("abc", False)
    assert render_infill_text("p", "s") == "p<mask_1>s<|endoftext|><sep><mask_1>"
