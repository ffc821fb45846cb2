"""Group-wise consolidation + task heads + rehearsal keeps old tasks better than fine-tuning at little new-task cost.

The lifelong framework's claim: consolidating weights (``b_g‖w_g − w_g^old‖²``) and replaying a little old data
while learning new tasks reduces forgetting relative to plain sequential fine-tuning, while still learning each new
task. Toy reproduction: four task-incremental tasks on one 20-d input space (latent 6-d factors, different linear
teachers per task, 200 training and 1000 test points each); an MLP body with one head per task. Methods, same
epochs and learning rate: ``finetune`` (b = 0, no rehearsal; the obvious baseline), ``freeze`` (b = ∞ on the body
after task 1), ``consolidate`` (b = 1 on the body), ``rehearsal`` (20 examples per old task, b = 0) and ``both``
(b = 1 and 20 rehearsal examples). b = 1 and 20 examples were fixed before the first run.

    python plugins/continual/benchmarks/consolidation_claim.py --quick --out consolidation_claim.json

Figures: final mean test accuracy over all tasks and mean forgetting per method; ``last_task_acc_*`` (plasticity).
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch
from malot_continual.consolidation import consolidated_train
from malot_continual.core.mlp import build_mlp
from malot_continual.core.synthetic import linear_teacher_task

from malot.benchmarking import benchmark_args, summarize, write_result

METHODS: dict[str, tuple[float, int]] = {
    "finetune": (0.0, 0),
    "freeze": (math.inf, 0),
    "consolidate": (1.0, 0),
    "rehearsal": (0.0, 20),
    "both": (1.0, 20),
}


def one_seed(seed: int, n_tasks: int, epochs: int) -> dict[str, Any]:
    """Every method from the same initial weights on the same task sequence."""
    g = torch.Generator().manual_seed(seed)
    proj = torch.randn(6, 20, generator=g)
    teachers = [torch.randn(6, 4, generator=g) for _ in range(n_tasks)]
    train = [linear_teacher_task(proj, t, 200, seed=seed * 100 + i) for i, t in enumerate(teachers)]
    test = [linear_teacher_task(proj, t, 1000, seed=seed * 100 + 50 + i) for i, t in enumerate(teachers)]
    torch.manual_seed(seed)
    init = build_mlp(20, [64, 64], 4, heads=n_tasks).state_dict()
    out: dict[str, Any] = {"seed": seed}
    for name, (b, rehearsal) in METHODS.items():
        model = build_mlp(20, [64, 64], 4, heads=n_tasks)
        model.load_state_dict(init)
        result = consolidated_train(
            model,
            train,
            strengths={"body": b},
            rehearsal=rehearsal,
            epochs=epochs,
            lr=0.005,
            seed=seed,
            evaluation=test,
        )
        final = result.accuracy[-1]
        out[name] = {
            "final_mean": sum(final) / len(final),
            "forgetting": result.forgetting,
            "last": final[-1],
            "matrix": result.accuracy,
        }
    return out


def main() -> None:
    """Run every seed and write the report."""
    opts = benchmark_args(__doc__, default_out="consolidation_claim.json", seeds=5, quick_seeds=2)
    start = time.perf_counter()
    n_tasks, epochs = (3, 8) if opts.quick else (4, 10)
    runs = [one_seed(s, n_tasks, epochs) for s in opts.seed_list]
    figures: dict[str, float] = {}
    spread: dict[str, Any] = {}
    for name in METHODS:
        for key, label in (("final_mean", "final_acc"), ("forgetting", "forgetting"), ("last", "last_task_acc")):
            stats = summarize([r[name][key] for r in runs])
            figures[f"{label}_{name}"] = stats["mean"]
            spread[f"{label}_{name}"] = stats
    figures["forgetting_ratio_both_vs_finetune"] = figures["forgetting_both"] / max(
        figures["forgetting_finetune"], 1e-9
    )
    write_result(
        opts.out,
        figures,
        details={
            "spread": spread,
            "tasks": n_tasks,
            "epochs": epochs,
            "seeds": len(runs),
            "runs": runs,
            "wall_s": round(time.perf_counter() - start, 2),
        },
    )


if __name__ == "__main__":
    main()
