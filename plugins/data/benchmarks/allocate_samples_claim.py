"""Lasso-relevance sample allocation beats uniform allocation for learning a target's representation.

Chen, Jamieson & Du (ICML 2022) show that when the target task's head is a sparse combination of a few source heads,
spending the source budget in proportion to the estimated relevance ``|ν̂|`` learns the part of the shared
representation the target needs with fewer samples than sampling every source uniformly. Synthetic reproduction of
their linear setting: inputs ``x ∈ R^d``, a shared representation ``B ∈ R^{d×k}`` (orthonormal), source tasks
``y = xᵀ B w_t + noise`` with unit-norm heads, and a target ``w_0 = Σ_{t∈{1,3}} ν_t w_t``. Stage 1 draws a few
samples per source uniformly, estimates each source's ``θ_t = B w_t`` by least squares, regresses the few labelled
target samples on the source predictions with a Lasso (``allocate_samples``) and splits the stage-2 budget; stage 2
samples, re-estimates the ``θ_t``, takes the top-k SVD subspace as ``B̂`` and fits the target in it from its few
labelled samples. Figure: the target's excess test error (mean squared error above the noise).

Baselines in the same run: uniform allocation of the same budget, the paper's L2 variant (∝ ν̂²), and an oracle that
knows the support. Same samples, same seeds for all.

    python plugins/data/benchmarks/allocate_samples_claim.py --quick --out allocate.json
"""

from __future__ import annotations

from typing import Any

import numpy as np
from malot_data.allocate_samples import allocate_budget, task_relevance

from malot.benchmarking import benchmark_args, summarize, write_result

D, K, T, NOISE = 40, 10, 10, 0.5


def one_seed(seed: int, budget: int, target_n: int) -> dict[str, Any]:
    """One problem instance; every allocation rule on the same instance."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(D, K)))[0]
    heads = rng.normal(size=(T, K))
    heads /= np.linalg.norm(heads, axis=1, keepdims=True)
    nu = np.zeros(T)
    nu[[1, 3]] = [1.0, -0.8]
    w0 = nu @ heads
    thetas = heads @ basis.T  # T × D

    def sample(task_theta: np.ndarray, n: int, r: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        x = r.normal(size=(n, D))
        return x, x @ task_theta + NOISE * r.normal(size=n)

    stage1 = D + 10  # enough for least squares per source
    data_rng = np.random.default_rng(seed + 1000)
    first = [sample(thetas[t], stage1, data_rng) for t in range(T)]

    def estimate(xs: list[np.ndarray], ys: list[np.ndarray]) -> np.ndarray:
        return np.stack([np.linalg.lstsq(x, y, rcond=None)[0] for x, y in zip(xs, ys, strict=True)])

    theta1 = estimate([f[0] for f in first], [f[1] for f in first])
    xt, yt = sample(basis @ w0, target_n, data_rng)
    nu_hat, alpha = task_relevance(xt @ theta1.T, yt, seed=seed)
    x_test = data_rng.normal(size=(2000, D))
    y_test = x_test @ (basis @ w0)
    rules = {
        "lasso_l1": allocate_budget(nu_hat, budget, weighting="l1"),
        "lasso_l2": allocate_budget(nu_hat, budget, weighting="l2"),
        "uniform": allocate_budget(np.ones(T), budget),
        "oracle_support": allocate_budget(np.abs(nu), budget),
    }
    errors: dict[str, float] = {}
    for name, allocation in rules.items():
        r = np.random.default_rng(seed + 2000)  # same stream for every rule
        xs, ys = [], []
        for t in range(T):
            extra = sample(thetas[t], allocation[t], r) if allocation[t] else (np.zeros((0, D)), np.zeros(0))
            xs.append(np.vstack([first[t][0], extra[0]]))
            ys.append(np.concatenate([first[t][1], extra[1]]))
        theta = estimate(xs, ys)
        weights = np.sqrt(np.array([len(y) for y in ys], dtype=float))[:, None]  # better-estimated tasks count more
        basis_hat = np.linalg.svd((weights * theta).T, full_matrices=False)[0][:, :K]
        coef = np.linalg.lstsq(xt @ basis_hat, yt, rcond=None)[0]
        errors[name] = float(np.mean((x_test @ basis_hat @ coef - y_test) ** 2))
    support = [int(i) for i in np.flatnonzero(np.abs(nu_hat) > 1e-8)]
    top2 = sorted(int(i) for i in np.argsort(-np.abs(nu_hat))[:2])
    return {
        "errors": errors,
        "alpha": alpha,
        "nu_hat": [float(v) for v in nu_hat],
        "support": support,
        "support_recovered": support == [1, 3],
        "top2_recovered": top2 == [1, 3],
        "allocation_lasso": rules["lasso_l1"],
    }


def main() -> None:
    """Run the seeds and write the figures."""
    args = benchmark_args(
        __doc__,
        default_out="plugins/data/benchmarks/results/allocate_samples_claim.json",
        seeds=10,
        quick_seeds=4,
        threads=None,
    )
    budget, target_n = 400, 25
    runs = [one_seed(seed, budget, target_n) for seed in args.seed_list]
    stats = {name: summarize([r["errors"][name] for r in runs]) for name in runs[0]["errors"]}
    ratio = summarize([r["errors"]["lasso_l1"] / r["errors"]["uniform"] for r in runs])
    write_result(
        args.out,
        {
            "lasso_excess_error": stats["lasso_l1"]["mean"],
            "uniform_excess_error": stats["uniform"]["mean"],
            "l2_excess_error": stats["lasso_l2"]["mean"],
            "oracle_excess_error": stats["oracle_support"]["mean"],
            "lasso_over_uniform_error_ratio": ratio["mean"],
            "support_recovery_rate": float(np.mean([r["support_recovered"] for r in runs])),
            "top2_recovery_rate": float(np.mean([r["top2_recovered"] for r in runs])),
        },
        details={
            "stats": stats,
            "ratio": ratio,
            "budget": budget,
            "target_samples": target_n,
            "dims": {"d": D, "k": K, "tasks": T, "noise": NOISE},
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
