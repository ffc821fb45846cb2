"""GPU checks (run only where a CUDA GPU is visible): the transformers and vLLM in-process backends on CUDA."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from malot.config import LLMSettings, VllmEngineSettings
from malot.llm import GenerationRequest, SamplingParams, load_llm
from malot.llm.hf_backend import TransformersLLM
from malot.llm.vllm_backend import VllmLLM

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

PROMPT, CONTINUATION = "theorem foo (n : ℕ) :", " n + 0 = n := by simp"


async def test_transformers_on_cuda_scores_like_the_cpu(tiny_llama: Path, hf_llama: TransformersLLM) -> None:
    async with TransformersLLM(tiny_llama, device="cuda", dtype="float32") as gpu:
        assert gpu.device == "cuda"
        (scored,) = await gpu.generate([GenerationRequest(prompt=PROMPT, score_continuation=CONTINUATION)])
        (sampled,) = await gpu.generate([GenerationRequest(prompt=PROMPT, params=SamplingParams(n=4, max_tokens=8))])
    (reference,) = await hf_llama.generate([GenerationRequest(prompt=PROMPT, score_continuation=CONTINUATION)])
    assert scored.continuation_logprobs == pytest.approx(reference.continuation_logprobs, abs=1e-3)
    assert len(sampled.completions) == 4


async def test_vllm_in_process_on_cuda(tiny_llama: Path, hf_llama: TransformersLLM) -> None:
    settings = LLMSettings(
        model=str(tiny_llama),
        backend="vllm",
        vllm=VllmEngineSettings(dtype="float32", max_model_len=512, gpu_memory_utilization=0.2, enforce_eager=True),
    )
    llm = load_llm(settings)
    assert isinstance(llm, VllmLLM)
    async with llm:
        sample = SamplingParams(n=4, max_tokens=8, logprobs=0)
        text, scored = await llm.generate(
            [
                GenerationRequest(prompt=PROMPT, params=sample),
                GenerationRequest(prompt=PROMPT, score_continuation=CONTINUATION),
            ]
        )
    (reference,) = await hf_llama.generate([GenerationRequest(prompt=PROMPT, score_continuation=CONTINUATION)])
    assert len(text.completions) == 4
    assert scored.continuation_logprobs == pytest.approx(reference.continuation_logprobs, abs=1e-2)
