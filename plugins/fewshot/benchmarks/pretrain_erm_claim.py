"""Unsupervised-pretraining claim: with m ≫ n, MLE pre-training of the latent model then ERM beats supervised learning.

Data from a latent-variable model: ``z`` uniform over 6 Gaussian components in 10-d (random means, unit noise), and
the label a fixed function of ``z`` (components {0, 2, 4} → 0, {1, 3, 5} → 1, so the classes are not linearly
separable in ``x``). m = 3000 unlabelled samples; n ∈ {8, 16, 32, 64} labelled. Compared on the same draws:

* ``supervised_logistic``: logistic regression on ``x`` (the simple baseline);
* ``supervised_rbf_svm``: an RBF-kernel SVM on ``x`` (a strong non-linear supervised baseline, default settings);
* ``pretrain_erm``: the tool — Gaussian-mixture MLE (6 components) on the unlabelled data, logistic ERM on the
  posterior responsibilities.

    python plugins/fewshot/benchmarks/pretrain_erm_claim.py --quick --out pretrain_erm_claim.json

Figures: test error of each method per n (means over seeds) and ``error_ratio_vs_best_supervised_n{n}``
(pretrain_erm / better supervised baseline; below 1 reproduces the claim).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from malot_fewshot.pretrain_erm import pretrain_then_erm

from malot.benchmarking import benchmark_args, summarize, write_result

COMPONENTS, DIM, M = 6, 10, 3000
NS = (8, 16, 32, 64)


def _draw(rng: np.random.Generator, means: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    z = rng.integers(COMPONENTS, size=n)
    return means[z] + rng.normal(size=(n, DIM)), (z % 2).astype(np.int64)


def _run(seed: int) -> dict[str, dict[str, float]]:
    from sklearn.svm import SVC

    rng = np.random.default_rng(seed)
    means = rng.normal(size=(COMPONENTS, DIM)) * 2.0
    unlabelled, _ = _draw(rng, means, M)
    x_test, y_test = _draw(rng, means, 4000)
    out: dict[str, dict[str, float]] = {}
    for n in NS:
        x, y = _draw(rng, means, n)
        while len(set(y.tolist())) < 2:
            x, y = _draw(rng, means, n)
        pre = pretrain_then_erm(unlabelled, x, y, latent_model="gmm", n_latent=COMPONENTS, c=10.0, seed=seed)
        log = pretrain_then_erm(unlabelled, x, y, latent_model="none")
        svm = SVC().fit(x, y)
        out[str(n)] = {
            "pretrain_erm": float((pre.predict(x_test) != y_test).mean()),
            "supervised_logistic": float((log.predict(x_test) != y_test).mean()),
            "supervised_rbf_svm": float((svm.predict(x_test) != y_test).mean()),
        }
    return out


def main() -> None:
    """Run every seed and write the JSON result."""
    args = benchmark_args(__doc__, default_out="results/pretrain_erm_claim.json", seeds=10, quick_seeds=3, threads=None)
    runs = [_run(seed) for seed in args.seed_list]
    figures: dict[str, float] = {}
    summary: dict[str, Any] = {}
    for n in NS:
        key = str(n)
        for method in ("supervised_logistic", "supervised_rbf_svm", "pretrain_erm"):
            stats = summarize([r[key][method] for r in runs])
            figures[f"{method}_error_n{n}"] = stats["mean"]
            summary[f"{method}_n{n}"] = stats
        ratios = [
            r[key]["pretrain_erm"] / max(min(r[key]["supervised_logistic"], r[key]["supervised_rbf_svm"]), 1e-9)
            for r in runs
        ]
        figures[f"error_ratio_vs_best_supervised_n{n}"] = summarize(ratios)["mean"]
        summary[f"ratio_n{n}"] = summarize(ratios)
    write_result(
        args.out, figures, details={"m_unlabelled": M, "seeds": args.seed_list, "summary": summary, "runs": runs}
    )


if __name__ == "__main__":
    main()
