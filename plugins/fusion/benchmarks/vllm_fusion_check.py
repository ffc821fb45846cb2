"""Dynamic Logits Fusion inside a real vLLM engine (CPU build is fine) vs the transformers fused decoding.

Starts malot's vLLM backend on the tiny large model with :func:`malot_fusion.vllm_fusion.fusion_engine_args`,
decodes greedily, and compares the text with the transformers backend decoding the same prompts with the same
fusion (float32 both). Writes the texts, whether they agree, and the per-step weights recorded in the engine.

    python plugins/fusion/benchmarks/vllm_fusion_check.py --out vllm_fusion_check.json
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

from malot.benchmarking import benchmark_args, write_result

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

PROMPTS = ["theorem t (a b : ℕ) (h : a = 1) : a + 1 = 2 := by\n", "lemma add_comm' (m n : ℕ) : m + n = n + m := by\n"]


async def run(models: dict[str, Path], tokens: int, record: Path) -> dict[str, object]:
    from malot_fusion import fused_llm
    from malot_fusion.vllm_fusion import fusion_engine_args

    from malot.config import VllmEngineSettings
    from malot.llm.base import GenerationRequest, SamplingParams
    from malot.llm.vllm_backend import VllmLLM

    params = SamplingParams(temperature=0.0, max_tokens=tokens)
    requests = [GenerationRequest(prompt=p, params=params) for p in PROMPTS]
    async with fused_llm(models["large"], models["expert"], models["base"], device="cpu") as hf:
        hf_texts = [r.texts[0] for r in await hf.generate(requests)]
    engine = VllmEngineSettings(
        dtype="float32", max_model_len=512, enforce_eager=True, engine_args={"distributed_executor_backend": "uni"}
    )
    started = time.perf_counter()
    extra = fusion_engine_args([str(models["expert"])], str(models["base"]), record_path=str(record))
    async with VllmLLM(str(models["large"]), engine=engine, engine_options=extra) as llm:
        vllm_texts = [r.texts[0] for r in await llm.generate(requests)]
    return {
        "texts_agree": float(hf_texts == vllm_texts),
        "details": {
            "hf_fused_texts": hf_texts,
            "vllm_fused_texts": vllm_texts,
            "vllm_seconds": time.perf_counter() - started,
        },
    }


def main() -> None:
    args = benchmark_args(
        __doc__,
        default_out="vllm_fusion_check.json",
        seeds=1,
        threads=os.cpu_count() or 1,
        extra=[
            (["--models"], {"type": Path, "default": Path(tempfile.gettempdir()) / "malot-fusion-bench-models"}),
            (["--tokens"], {"type": int, "default": 12}),
        ],
    )
    from malot_fusion.testing import build_fusion_models

    models = build_fusion_models(args.models)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = args.out.with_suffix(".steps.jsonl")
    record.unlink(missing_ok=True)
    result = asyncio.run(run(models, args.tokens, record))
    steps = [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
    result["vllm_fused_steps_recorded"] = len(steps)
    details = result.pop("details")
    assert isinstance(details, dict)
    details["first_steps"] = steps[:6]
    details["quick"] = "accepted for symmetry; the run is already short"
    write_result(args.out, result, details=details)


if __name__ == "__main__":
    main()
