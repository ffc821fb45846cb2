"""Decoding speed with Dynamic Logits Fusion vs the large model alone, on the same tiny offline models.

Both runs use Hugging Face ``generate`` with the large model's KV cache; the fused run adds the logits processor,
whose small expert and base read each new token once through their own KV caches. Every row decodes exactly
``--tokens`` new tokens (greedy, EOS suppressed by ``min_new_tokens``) so both runs do the same number of steps.

Top-level figures: ``fused_tokens_per_second``, ``unfused_tokens_per_second`` and ``forward_passes_ratio`` (model
forward passes of the fused run over the unfused run; 3.0 for one expert with a working cache). ``details`` adds the
measured slowdown, a "static" run (the same three models with a fixed weight, i.e. the forward passes without the
per-step solve) and per-model step timings, so the cost of the weight solve is visible on its own.

    python plugins/fusion/benchmarks/fusion_speed.py --quick --out fusion_speed.json
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from malot.benchmarking import benchmark_args, write_result

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")


class _StaticFusion:
    """Proxy-tuning with a fixed weight: the same three models and caches, no per-step solve (a cost baseline)."""

    def __init__(self, expert: Any, base: Any, weight: float) -> None:
        self.expert, self.base, self.weight = expert, base, weight

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        shift = self.expert.next_logits(input_ids) - self.base.next_logits(input_ids)
        return scores + self.weight * shift


def main() -> None:
    args = benchmark_args(
        __doc__,
        default_out="fusion_speed.json",
        seeds=1,
        threads=int(os.environ.get("OMP_NUM_THREADS", "1")),
        extra=[
            (["--models"], {"type": Path, "default": Path(tempfile.gettempdir()) / "malot-fusion-bench-models"}),
            (["--tokens"], {"type": int, "default": None}),
            (["--batch"], {"type": int, "default": 4}),
            (["--repeats"], {"type": int, "default": None}),
        ],
    )

    import torch
    from malot_fusion.fusion_processor import FusionLogitsProcessor
    from malot_fusion.incremental import IncrementalLM
    from malot_fusion.testing import build_fusion_models
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokens = args.tokens or (32 if args.quick else 128)
    repeats = args.repeats or (3 if args.quick else 5)
    paths = build_fusion_models(args.models)
    tokenizer = AutoTokenizer.from_pretrained(paths["large"])
    large = AutoModelForCausalLM.from_pretrained(paths["large"]).eval()
    expert = AutoModelForCausalLM.from_pretrained(paths["expert"]).eval()
    base = AutoModelForCausalLM.from_pretrained(paths["base"]).eval()
    pad = tokenizer.pad_token_id

    prompts = [
        "theorem t (a b : ℕ) (h : a = 1) : a + 1 = 2 := by\n",
        "theorem sq (x : ℝ) : 0 ≤ x ^ 2 := by\n",
        "lemma add_comm' (m n : ℕ) : m + n = n + m := by\n",
        "example (a : ℤ) (h : 2 * a = 4) : a = 2 := by\n",
    ]
    rows = [prompts[i % len(prompts)] for i in range(args.batch)]
    encoded = [tokenizer(p)["input_ids"] for p in rows]
    width = max(len(e) for e in encoded)
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    attention = torch.zeros_like(input_ids)
    for k, e in enumerate(encoded):
        input_ids[k, width - len(e) :] = torch.tensor(e)
        attention[k, width - len(e) :] = 1

    large_calls = [0]
    large.register_forward_hook(lambda *_: large_calls.__setitem__(0, large_calls[0] + 1))

    def run(processors: list[Any]) -> tuple[float, int]:
        large_calls[0] = 0
        start = time.perf_counter()
        with torch.inference_mode():
            out = large.generate(
                input_ids=input_ids,
                attention_mask=attention,
                max_new_tokens=tokens,
                min_new_tokens=tokens,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=pad,
                logits_processor=processors,
            )
        elapsed = time.perf_counter() - start
        assert out.shape[1] == width + tokens
        return elapsed, large_calls[0]

    def timed(make: Any) -> tuple[list[float], int, Any]:
        times: list[float] = []
        calls = 0
        made: Any = None
        run(make()[0])  # warm-up
        for _ in range(repeats):
            processors, made = make()
            elapsed, calls = run(processors)
            times.append(elapsed)
        return times, calls, made

    unfused_times, unfused_calls, _ = timed(lambda: ([], None))

    def make_fused() -> tuple[list[Any], Any]:
        processor = FusionLogitsProcessor([expert], base, pad_token_id=pad)
        return [processor], processor

    fused_times, fused_large_calls, processor = timed(make_fused)
    fused_side = processor.side_forward_passes

    def make_static() -> tuple[list[Any], Any]:
        static = _StaticFusion(IncrementalLM(expert, pad_token_id=pad), IncrementalLM(base, pad_token_id=pad), 1.0)
        return [static], static

    static_times, _, _ = timed(make_static)

    # one cached decode step of each model alone, to price the extra passes
    def step_time(model: Any) -> float:
        inc = IncrementalLM(model, pad_token_id=pad)
        seq = input_ids.clone()
        with torch.inference_mode():
            inc.next_logits(seq)
            start = time.perf_counter()
            for t in range(tokens):
                seq = torch.cat([seq, torch.full((seq.shape[0], 1), 5 + t % 50, dtype=torch.long)], dim=1)
                inc.next_logits(seq)
        return (time.perf_counter() - start) / tokens

    large_step, small_step = step_time(large), step_time(base)
    generated = len(rows) * tokens
    fused_t, unfused_t, static_t = (statistics.median(x) for x in (fused_times, unfused_times, static_times))
    fused_passes = fused_large_calls + fused_side
    weights = [w[0] for s in processor.recorder.steps for w in s.weights]
    write_result(
        args.out,
        {
            "fused_tokens_per_second": generated / fused_t,
            "unfused_tokens_per_second": generated / unfused_t,
            "forward_passes_ratio": fused_passes / unfused_calls,
        },
        details={
            "rows": len(rows),
            "new_tokens_per_row": tokens,
            "repeats": repeats,
            "unfused_forward_passes": unfused_calls,
            "fused_forward_passes": {"large": fused_large_calls, "expert_and_base": fused_side},
            "static_fusion_tokens_per_second": generated / static_t,
            "slowdown_fused_vs_unfused": fused_t / unfused_t,
            "slowdown_static_vs_unfused": static_t / unfused_t,
            "solve_overhead_vs_static": fused_t / static_t - 1.0,
            "step_seconds": {"large": large_step, "small": small_step},
            "passes_cost_ratio_from_step_times": (large_step + 2 * small_step) / large_step,
            "fused_within_forward_passes_ratio": fused_t / unfused_t <= fused_passes / unfused_calls,
            "weight_mean": statistics.fmean(weights),
            "weight_min": min(weights),
            "weight_max": max(weights),
            "times_seconds": {"fused": fused_times, "unfused": unfused_times, "static": static_times},
            "threads": torch.get_num_threads(),
        },
    )


if __name__ == "__main__":
    main()
