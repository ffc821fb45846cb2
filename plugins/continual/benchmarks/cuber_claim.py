"""CUBER: backward transfer to correlated old tasks without losing GPM's protection of conflicting ones.

Lin et al. (2022) claim CUBER reaches positive backward transfer (BWT) without replay, where GPM only avoids
forgetting (BWT ≈ 0) and plain SGD forgets. Toy reproduction: three task-incremental tasks on one 20-d input space
(inputs ``z @ P`` with 6 latent factors, one head per task, labels the arg-max of a linear teacher on ``z``):
task A has few examples (40), task B uses the *negated* teacher of A (conflicting), task C a slightly perturbed
copy of A's teacher with 400 examples (correlated). Each method learns A, B, C in order with the same SGD budget;
BWT = mean over A and B of (final accuracy − accuracy right after learning it), on 1000 held-out points per task.

    python plugins/continual/benchmarks/cuber_claim.py --quick --out cuber_claim.json

Figures: ``bwt_cuber``, ``bwt_gpm``, ``bwt_sgd``, ``acc_a_gain_cuber`` / ``_gpm`` (A's accuracy change over the
stream), and ``final_mean_acc_*``; per-seed runs and CUBER's flags under ``details``. Settings were fixed before
the first run (ε_th = 0.97, projection ε = 0.5, λ = 1).
"""

from __future__ import annotations

import time
from typing import Any

import torch
from malot_continual.core.mlp import accuracy, build_mlp
from malot_continual.core.synthetic import linear_teacher_task
from malot_continual.cuber import GradientMemory, learn_task

from malot.benchmarking import benchmark_args, summarize, write_result

METHODS = ("cuber", "gpm", "sgd")
DIM, LATENT, CLASSES = 20, 6, 4


def one_seed(seed: int, epochs: int) -> dict[str, Any]:
    """Learn A, B, C with every method from the same initial weights; accuracies after each task."""
    g = torch.Generator().manual_seed(seed)
    proj = torch.randn(LATENT, DIM, generator=g)
    teach_a = torch.randn(LATENT, CLASSES, generator=g)
    teachers = [teach_a, -teach_a, teach_a + 0.3 * torch.randn(LATENT, CLASSES, generator=g)]
    sizes = [40, 400, 400]
    train = [
        linear_teacher_task(proj, t, n, seed=seed * 10 + i)
        for i, (t, n) in enumerate(zip(teachers, sizes, strict=True))
    ]
    test = [linear_teacher_task(proj, t, 1000, seed=seed * 10 + 5 + i) for i, t in enumerate(teachers)]
    torch.manual_seed(seed)
    init = build_mlp(DIM, [32, 32], CLASSES, heads=3).state_dict()
    out: dict[str, Any] = {"seed": seed}
    for method in METHODS:
        model = build_mlp(DIM, [32, 32], CLASSES, heads=3)
        model.load_state_dict(init)
        memory = GradientMemory()
        after: list[float] = []
        flags = []
        for task, data in enumerate(train):
            flags.append(learn_task(model, data, memory, head=task, method=method, epochs=epochs, lr=0.05, seed=seed))
            after.append(accuracy(model, test[task], head=task))
        final = [accuracy(model, test[t], head=t) for t in range(3)]
        out[method] = {
            "after": after,
            "final": final,
            "bwt": sum(final[t] - after[t] for t in range(2)) / 2,
            "gain_a": final[0] - after[0],
            "flags": flags,
        }
    return out


def main() -> None:
    """Run every seed and write the report."""
    opts = benchmark_args(__doc__, default_out="cuber_claim.json", seeds=8, quick_seeds=3)
    start = time.perf_counter()
    epochs = 20 if opts.quick else 30
    runs = [one_seed(s, epochs) for s in opts.seed_list]
    figures: dict[str, float] = {}
    spread: dict[str, Any] = {}
    for method in METHODS:
        bwt = summarize([r[method]["bwt"] for r in runs])
        figures[f"bwt_{method}"] = bwt["mean"]
        figures[f"final_mean_acc_{method}"] = summarize([sum(r[method]["final"]) / 3 for r in runs])["mean"]
        spread[f"bwt_{method}"] = bwt
        spread[f"gain_a_{method}"] = summarize([r[method]["gain_a"] for r in runs])
    figures["acc_a_gain_cuber"] = spread["gain_a_cuber"]["mean"]
    figures["acc_a_gain_gpm"] = spread["gain_a_gpm"]["mean"]
    write_result(
        opts.out,
        figures,
        details={
            "spread": spread,
            "cuber_beats_gpm_bwt": sum(r["cuber"]["bwt"] > r["gpm"]["bwt"] for r in runs),
            "epochs_per_task": epochs,
            "seeds": len(runs),
            "runs": runs,
            "wall_s": round(time.perf_counter() - start, 2),
        },
    )


if __name__ == "__main__":
    main()
