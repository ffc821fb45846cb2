"""TAS claim: the searched widths/depth trained with KD beat uniform pruning to the same FLOPs.

Synthetic set-up: 10-class labels from a random teacher MLP on 20 features; the unpruned network is a
20-128-128-128-10 MLP. TAS searches widths (fractions 1/8..1) and depth (1..3) under a FLOP target of R of the
unpruned FLOPs, then trains the argmax network from scratch with KD from the unpruned one. Every baseline gets
the FLOPs of the network TAS found (a uniform width w with the closest FLOPs) and the same training steps:

* ``uniform_kd``: uniform-width network from scratch with the same KD;
* ``l1_prune_kd``: the unpruned network shrunk uniformly by L1 channel magnitude (torch-pruning), fine-tuned with KD
  (the obvious strong baseline: it inherits trained weights);
* ``tas_no_kd``: the TAS architecture trained with cross-entropy only (the paper's KD ablation).

    python plugins/sparse/benchmarks/tas_claim.py --quick --out tas_claim.json

Top-level figures (means over seeds): ``unpruned_acc``, ``tas_kd_acc``, ``tas_no_kd_acc``, ``uniform_kd_acc``,
``l1_prune_kd_acc``, ``tas_flops_ratio`` and ``tas_minus_best_baseline`` (above 0 reproduces the claim). Settings
fixed before the first run.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from malot.benchmarking import benchmark_args, summarize, write_result

DIM, CLASSES, WIDTH, LAYERS = 20, 10, 128, 3


def _run(seed: int, quick: bool, ratio: float) -> dict[str, Any]:
    import torch
    from malot_sparse.core.mlp import accuracy, build_mlp, split, train_classifier
    from malot_sparse.core.structured import mlp_flops, shrink_widths
    from malot_sparse.tas import build_supernet, search

    g = torch.Generator().manual_seed(seed)
    w1 = torch.randn(DIM, 64, generator=g) / DIM**0.5
    w2 = torch.randn(64, CLASSES, generator=g)
    x = torch.randn(6000, DIM, generator=g)
    y = (torch.tanh(x @ w1) @ w2).argmax(dim=1)
    x_train, y_train, x_test, y_test = split(x, y, 1 / 3, seed)
    x_fit, y_fit, x_val, y_val = split(x_train, y_train, 0.5, seed + 1)
    steps = 600 if quick else 1200
    lr = 2e-3
    torch.manual_seed(seed)
    teacher = build_mlp(DIM, [WIDTH] * LAYERS, CLASSES)
    train_classifier(teacher, x_train, y_train, steps=steps, lr=lr, seed=seed)
    full = mlp_flops(DIM, [WIDTH] * LAYERS, CLASSES)
    supernet = build_supernet(DIM, WIDTH, LAYERS, CLASSES, [i / 8 for i in range(1, 9)], teacher=teacher)
    found = search(supernet, x_fit, y_fit, x_val, y_val, target_flops=ratio * full, steps=steps // 2, lr=lr, seed=seed)

    def trained(widths: list[int], kd: bool, init: torch.nn.Sequential | None = None) -> float:
        torch.manual_seed(seed + 1)
        net = init if init is not None else build_mlp(DIM, widths, CLASSES)
        train_classifier(
            net,
            x_train,
            y_train,
            steps=steps,
            lr=lr,
            seed=seed + 2,
            teacher=teacher if kd else None,
            kd_weight=0.9 if kd else 0.0,
        )
        return accuracy(net, x_test, y_test)

    uniform = min(range(1, WIDTH + 1), key=lambda w: abs(mlp_flops(DIM, [w] * LAYERS, CLASSES) - found.flops))
    return {
        "unpruned_acc": accuracy(teacher, x_test, y_test),
        "tas_kd_acc": trained(found.widths, kd=True),
        "tas_no_kd_acc": trained(found.widths, kd=False),
        "uniform_kd_acc": trained([uniform] * LAYERS, kd=True),
        "l1_prune_kd_acc": trained([uniform] * LAYERS, kd=True, init=shrink_widths(teacher, [uniform] * LAYERS)),
        "tas_flops_ratio": found.flops / full,
        "uniform_flops_ratio": mlp_flops(DIM, [uniform] * LAYERS, CLASSES) / full,
        "tas_widths": found.widths,
        "uniform_width": uniform,
    }


def main() -> None:
    """Run the benchmark and write one JSON object."""
    args = benchmark_args(
        __doc__,
        default_out="tas_claim.json",
        seeds=4,
        quick_seeds=1,
        extra=[(["--ratio"], {"type": float, "default": 0.3, "help": "FLOP target R"})],
    )
    start = time.perf_counter()
    runs = [_run(seed, args.quick, args.ratio) for seed in args.seed_list]
    keys = ["unpruned_acc", "tas_kd_acc", "tas_no_kd_acc", "uniform_kd_acc", "l1_prune_kd_acc", "tas_flops_ratio"]

    def mean(key: str) -> float:
        return statistics.mean(r[key] for r in runs)

    figures = {k: mean(k) for k in keys}
    figures["tas_minus_best_baseline"] = mean("tas_kd_acc") - max(mean("uniform_kd_acc"), mean("l1_prune_kd_acc"))
    write_result(
        args.out,
        figures,
        details={
            "quick": args.quick,
            "seeds": args.seed_list,
            "flops_target_ratio": args.ratio,
            "summary": {k: summarize([r[k] for r in runs]) for k in keys},
            "runs": runs,
            "seconds": time.perf_counter() - start,
        },
    )


if __name__ == "__main__":
    main()
