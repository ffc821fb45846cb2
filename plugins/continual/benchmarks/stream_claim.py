"""NEVIS'22: on a stream of related tasks, transfer (fine-tuning from the previous task) reaches lower mean error
than independent learners for the same cumulative compute; a frozen body is cheapest but worse.

Bornschein et al. report error against cumulative compute over their stream and find fine-tuning from the
previous task's model the strongest simple baseline, well ahead of learning each task independently. Toy stream:
8 tasks on one 20-d input space (latent 8-d factors); each task's labels come from a teacher that is a shared base
plus task noise (5 classes), with only 60 training, 200 validation and 500 test examples. Learners, each choosing
its learning rate on the validation split from {0.003, 0.01} with every trial's FLOPs counted: ``independent``
(10 epochs), ``independent_2x`` (20 epochs: the compute-matched question "what if the independent learner got
more compute?"), ``finetune`` (10 epochs) and ``frozen`` (linear probe after task 1).

    python plugins/continual/benchmarks/stream_claim.py --quick --out stream_claim.json

Figures: mean test error and total GFLOPs per learner; ``error_ratio_finetune_vs_independent``.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from malot_continual.core.synthetic import linear_teacher_task
from malot_continual.stream import MlpLearner, StreamTask, run_stream

from malot.benchmarking import benchmark_args, summarize, write_result

LEARNERS: dict[str, dict[str, Any]] = {
    "independent": {"kind": "independent", "epochs": 10},
    "independent_2x": {"kind": "independent", "epochs": 20},
    "finetune": {"kind": "finetune", "epochs": 10},
    "frozen": {"kind": "frozen", "epochs": 10},
}


def make_stream(seed: int, n_tasks: int) -> list[StreamTask]:
    """Related tasks: a shared teacher plus per-task noise, few training examples each."""
    g = torch.Generator().manual_seed(seed)
    proj = torch.randn(8, 20, generator=g)
    base = torch.randn(8, 5, generator=g)
    tasks = []
    for i in range(n_tasks):
        teacher = base + 0.5 * torch.randn(8, 5, generator=g)
        splits = [
            linear_teacher_task(proj, teacher, n, seed=seed * 100 + 3 * i + s) for s, n in enumerate((60, 200, 500))
        ]
        tasks.append(StreamTask(f"task{i}", *splits))
    return tasks


def main() -> None:
    """Run every learner on every seed's stream and write the report."""
    opts = benchmark_args(__doc__, default_out="stream_claim.json", seeds=5, quick_seeds=2)
    start = time.perf_counter()
    n_tasks = 5 if opts.quick else 8
    runs: list[dict[str, Any]] = []
    for seed in opts.seed_list:
        run: dict[str, Any] = {"seed": seed}
        for name, cfg in LEARNERS.items():
            result = run_stream(make_stream(seed, n_tasks), MlpLearner(seed=seed, **cfg))
            run[name] = {
                "mean_error": result.mean_error,
                "gflops": result.cumulative_flops[-1] / 1e9,
                "errors": result.errors,
                "cumulative_gflops": [f / 1e9 for f in result.cumulative_flops],
            }
        runs.append(run)
    figures: dict[str, float] = {}
    spread: dict[str, Any] = {}
    for name in LEARNERS:
        stats = summarize([r[name]["mean_error"] for r in runs])
        figures[f"mean_error_{name}"] = stats["mean"]
        figures[f"gflops_{name}"] = summarize([r[name]["gflops"] for r in runs])["mean"]
        spread[name] = stats
    figures["error_ratio_finetune_vs_independent"] = figures["mean_error_finetune"] / figures["mean_error_independent"]
    write_result(
        opts.out,
        figures,
        details={
            "spread": spread,
            "tasks": n_tasks,
            "seeds": len(runs),
            "runs": runs,
            "finetune_beats_independent_2x": sum(
                r["finetune"]["mean_error"] < r["independent_2x"]["mean_error"] for r in runs
            ),
            "wall_s": round(time.perf_counter() - start, 2),
        },
    )


if __name__ == "__main__":
    main()
