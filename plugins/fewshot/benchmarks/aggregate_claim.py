"""Aggregate-responses claim: interpolating bag and instance losses (ρ chosen on held-out bags) is at least as good as
either pure loss, and the instance loss (ρ = 1) is biased while the bag loss (ρ = 0) has high variance.

Linear model ``y = θ*ᵀx + ε`` (d = 20, noise σ = 1, ‖θ*‖ = 2), instances grouped into random bags of size k = 10 (only
bag means observed); n = 300 (30 bags, close to the 20 parameters: the regime where the paper's theory says the
bias-variance trade-off matters) and, as a control, n = 2000 (200 bags: the unbiased bag loss should be hard to
beat). For each seed: fit ``ρ ∈ {0, 0.1, …, 1}`` on the training bags; choose ρ by 5-fold cross-validation
over bags with the bag-level loss (the only loss computable from aggregates); report the instance
test MSE ``E(θᵀx − y)²`` on fresh data. The same with ε = 1 label-DP bag means goes in ``details.dp_summary``.

    python plugins/fewshot/benchmarks/aggregate_claim.py --quick --out aggregate_claim.json

Figures: test MSE of ``bag`` (ρ=0), ``instance`` (ρ=1), ``interpolated`` (CV ρ) and the ratios
``interpolated_over_bag`` and ``interpolated_over_instance`` (below 1: interpolation wins), the same ratios under
ε = 1 label-DP (``dp_*``) and ``many_bags_interpolated_over_bag`` (the control).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from malot_fewshot.aggregate import bag_means, fit_interpolated, private_bag_means

from malot.benchmarking import benchmark_args, summarize, write_result

DIM, BAG, NOISE = 20, 10, 1.0
RHOS = [round(0.1 * i, 1) for i in range(11)]


def _cv_rho(x: np.ndarray, bags: np.ndarray, ybar: np.ndarray, rng: np.random.Generator) -> float:
    n_bags = len(ybar)
    folds = rng.permutation(n_bags) % 5
    scores = []
    for rho in RHOS:
        err = 0.0
        for fold in range(5):
            train_bags = np.flatnonzero(folds != fold)
            remap = -np.ones(n_bags, dtype=np.int64)
            remap[train_bags] = np.arange(len(train_bags))
            keep = remap[bags] >= 0
            theta = fit_interpolated(x[keep], remap[bags[keep]], ybar[train_bags], rho)
            fbar, sizes = bag_means(x @ theta, bags)
            held = folds == fold
            err += float((sizes[held] * (ybar[held] - fbar[held]) ** 2).sum())
        scores.append(err)
    return RHOS[int(np.argmin(scores))]


def _one(seed: int, n: int, epsilon: float | None) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    theta_star = rng.normal(size=DIM)
    theta_star *= 2.0 / np.linalg.norm(theta_star)
    x = rng.normal(size=(n, DIM))
    y = x @ theta_star + NOISE * rng.normal(size=n)
    bags = rng.permutation(np.arange(n) % (n // BAG))
    ybar = private_bag_means(y, bags, epsilon=epsilon, bounds=(-10.0, 10.0), rng=rng)
    x_test = rng.normal(size=(5000, DIM))
    y_test = x_test @ theta_star + NOISE * rng.normal(size=5000)

    def mse(theta: np.ndarray) -> float:
        return float(((x_test @ theta - y_test) ** 2).mean())

    rho = _cv_rho(x, bags, ybar, rng)
    curve = {str(r): mse(fit_interpolated(x, bags, ybar, r)) for r in RHOS}
    return {
        "bag": curve["0.0"],
        "instance": curve["1.0"],
        "interpolated": mse(fit_interpolated(x, bags, ybar, rho)),
        "cv_rho": rho,
        "oracle_best": min(curve.values()),
        "noise_floor": NOISE**2,
        **{f"rho_{k}": v for k, v in curve.items()},
    }


def main() -> None:
    """Run every seed (with and without DP) and write the JSON result."""
    args = benchmark_args(__doc__, default_out="results/aggregate_claim.json", seeds=10, quick_seeds=4, threads=None)
    n = 300  # 30 bags for d = 20 parameters: the regime the paper's theory targets (bags ≈ dimension)
    runs = [_one(seed, n, None) for seed in args.seed_list]
    dp_runs = [_one(seed, n, 1.0) for seed in args.seed_list]
    many_bags = [_one(seed, 2000, None) for seed in args.seed_list]

    def stats(rows: list[dict[str, float]]) -> dict[str, Any]:
        return {k: summarize([r[k] for r in rows]) for k in rows[0]}

    figures = {
        "bag_mse": summarize([r["bag"] for r in runs])["mean"],
        "instance_mse": summarize([r["instance"] for r in runs])["mean"],
        "interpolated_mse": summarize([r["interpolated"] for r in runs])["mean"],
        "interpolated_over_bag": summarize([r["interpolated"] / r["bag"] for r in runs])["mean"],
        "interpolated_over_instance": summarize([r["interpolated"] / r["instance"] for r in runs])["mean"],
        "dp_interpolated_over_bag": summarize([r["interpolated"] / r["bag"] for r in dp_runs])["mean"],
        "dp_interpolated_over_instance": summarize([r["interpolated"] / r["instance"] for r in dp_runs])["mean"],
        "many_bags_interpolated_over_bag": summarize([r["interpolated"] / r["bag"] for r in many_bags])["mean"],
    }
    write_result(
        args.out,
        figures,
        details={
            "n": n,
            "bag_size": BAG,
            "dim": DIM,
            "seeds": args.seed_list,
            "summary": stats(runs),
            "dp_epsilon": 1.0,
            "dp_summary": stats(dp_runs),
            "many_bags_n": 2000,
            "many_bags_summary": stats(many_bags),
            "ratio_spread": {
                "interpolated_over_bag": summarize([r["interpolated"] / r["bag"] for r in runs]),
                "interpolated_over_instance": summarize([r["interpolated"] / r["instance"] for r in runs]),
            },
        },
    )


if __name__ == "__main__":
    main()
