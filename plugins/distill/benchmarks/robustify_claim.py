"""Efficient-robustification claim: distilling a noise-robust small model into a small subset of a large model's
parameters raises the large model's accuracy under noise while its clean accuracy drops by at most ε (1 point).

Synthetic set-up: a 10-class Gaussian-mixture task (3 modes per class, 20-D, noise 1.0). The large model (MLP
20-128-128-10) is trained clean; the small model (MLP 20-32-10) is trained with Gaussian-noise augmentation (σ = 1.5,
the test perturbation). Only the large model's head and biases are tuned (~7% of its parameters; the first run
tuned the last hidden layer + head, which is 87% of this MLP's parameters, so not a subset worth the name).
Compared on clean and noisy test sets (2000 samples each): ``original`` (the clean large model),
``robustify`` (this tool: KD from the robust small model on noisy inputs + KD from the original on clean inputs),
``noise_ft`` (the obvious baseline: the same subset, same steps, fine-tuned with cross-entropy on clean + noisy
inputs), ``small`` (the robust small model itself).

    python plugins/distill/benchmarks/robustify_claim.py --quick --out robustify.json

Figures: ``noisy_gain`` (robustify − original, noisy accuracy, points), ``clean_drop`` (original − robustify, clean,
points), ``noisy_gain_noise_ft``, ``clean_drop_noise_ft``, and every variant's accuracies. Reproduced when
``noisy_gain > 0`` and ``clean_drop ≤ 1``.
"""

from __future__ import annotations

import copy
from typing import Any

from malot.benchmarking import benchmark_args, summarize, write_result

SIGMA = 1.5


def run(seed: int, quick: bool) -> dict[str, float]:
    """One seed: train large (clean) and small (robust), then robustify and the noise fine-tune baseline."""
    import torch
    import torch.nn.functional as F
    from malot_distill.core.mlp import build_mlp
    from malot_distill.core.toy import mixture_centres, sample_mixture, train_ce
    from malot_distill.core.train import accuracy, batches, fit
    from malot_distill.robustify import gaussian_noise, robustify_large, select_subset, train_robust_small

    centres = mixture_centres(10, 3, 20, seed, spread=1.5)
    x, y, _ = sample_mixture(centres, 4000, seed + 1)
    x_t, y_t, _ = sample_mixture(centres, 2000, seed + 2)
    x_n = gaussian_noise(SIGMA, seed + 3)(x_t, 0)
    pre = 400 if quick else 800
    steps = 200 if quick else 400
    large = build_mlp([20, 128, 128, 10], seed=seed)
    train_ce(large, x, y, steps=pre, seed=seed)
    small = build_mlp([20, 32, 10], seed=seed + 1)
    train_robust_small(small, x, y, gaussian_noise(SIGMA, seed), steps=pre, seed=seed)
    subset = select_subset(large, ["head", "bias"])
    out: dict[str, float] = {
        "original_clean": 100 * accuracy(large, x_t, y_t),
        "original_noisy": 100 * accuracy(large, x_n, y_t),
        "small_clean": 100 * accuracy(small, x_t, y_t),
        "small_noisy": 100 * accuracy(small, x_n, y_t),
    }
    robust = copy.deepcopy(large)
    robustify_large(robust, small, x, y, gaussian_noise(SIGMA, seed + 5), subset, steps=steps, lr=1e-3, seed=seed)
    out["robustify_clean"] = 100 * accuracy(robust, x_t, y_t)
    out["robustify_noisy"] = 100 * accuracy(robust, x_n, y_t)
    ft = copy.deepcopy(large)
    params = dict(ft.named_parameters())
    for name, p in params.items():
        p.requires_grad_(name in subset)
    order = batches(x.shape[0], 64, steps, seed)
    noise = gaussian_noise(SIGMA, seed + 5)

    def ce(step: int) -> torch.Tensor:
        xb, yb = x[order[step]], y[order[step]]
        return F.cross_entropy(ft(torch.cat([xb, noise(xb, step)])), torch.cat([yb, yb]))

    ft.train()
    fit([params[n] for n in subset], ce, steps=steps, lr=1e-3)
    ft.eval()
    out["noise_ft_clean"] = 100 * accuracy(ft, x_t, y_t)
    out["noise_ft_noisy"] = 100 * accuracy(ft, x_n, y_t)
    out["noisy_gain"] = out["robustify_noisy"] - out["original_noisy"]
    out["clean_drop"] = out["original_clean"] - out["robustify_clean"]
    out["noisy_gain_noise_ft"] = out["noise_ft_noisy"] - out["original_noisy"]
    out["clean_drop_noise_ft"] = out["original_clean"] - out["noise_ft_clean"]
    total = sum(p.numel() for p in params.values())
    out["tuned_fraction"] = sum(params[n].numel() for n in subset) / total
    return out


def main() -> None:
    """Run the seeds and write the JSON result."""
    args = benchmark_args(
        __doc__, default_out="plugins/distill/benchmarks/results/robustify_claim.json", seeds=5, quick_seeds=2
    )
    runs = [run(seed, args.quick) for seed in args.seed_list]
    stats: dict[str, Any] = {k: summarize([r[k] for r in runs]) for k in runs[0]}
    figures = {k: stats[k]["mean"] for k in runs[0]}
    reproduced = figures["noisy_gain"] > 0 and figures["clean_drop"] <= 1.0
    details = {"stats": stats, "runs": runs, "quick": args.quick, "reproduced": reproduced, "epsilon_points": 1.0}
    write_result(args.out, figures, details=details)


if __name__ == "__main__":
    main()
