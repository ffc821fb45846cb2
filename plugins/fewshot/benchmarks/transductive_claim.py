"""LaplacianShot claim: transductive Laplacian-regularised inference beats inductive nearest-prototype classification.

Synthetic few-shot episodes (5-way, 1-shot and 5-shot, 15 queries per class) in a 32-d feature space where each class
is a few elongated sub-clusters (so one support sample is a poor prototype). Features are centred on the episode and
L2-normalised, as in SimpleShot/LaplacianShot. Compared on the same episodes:

* ``nearest_prototype``: inductive SimpleShot (query → nearest support mean), the obvious baseline;
* ``kmeans``: transductive prototype refinement only (``λ = 0``, support anchors kept);
* ``laplacian_shot``: the tool (``λ = 1``, 3-NN affinity, hard bound updates), λ fixed before the run; the accuracy
  of other λ values is in ``details.runs[*].Nshot_sweep`` (not used to pick the headline);
* ``laplacian_fixed_prototypes``: the same with the support prototypes kept fixed (the paper's inference, which
  rectifies prototypes once instead of re-estimating them; added after the first full run).

    python plugins/fewshot/benchmarks/transductive_claim.py --quick --out transductive_claim.json

Figures: accuracies (mean over episodes and seeds), ``gain_vs_nearest_prototype_{1,5}shot`` and
``gain_vs_kmeans_{1,5}shot`` (percentage points; positive favours LaplacianShot). The class geometry (noise level) was
set so that the inductive baseline is not saturated, before looking at the LaplacianShot figures.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from malot_fewshot.transductive import laplacian_shot

from malot.benchmarking import benchmark_args, summarize, write_result

WAYS, QUERIES, DIM, SUBS = 5, 15, 32, 3
LAMBDA = 1.0
SWEEP = (0.25, 0.5, 2.0, 4.0)


def _episode(rng: np.random.Generator, shots: int) -> tuple[np.ndarray, ...]:
    xs, ys = [], []
    for c in range(WAYS):
        centre = rng.normal(size=DIM) * 1.0
        subs = centre + rng.normal(size=(SUBS, DIM)) * 1.0
        n = shots + QUERIES
        pick = rng.integers(SUBS, size=n)
        xs.append(subs[pick] + rng.normal(size=(n, DIM)) * 1.6)
        ys.append(np.full(n, c))
    support = np.concatenate([x[:shots] for x in xs])
    query = np.concatenate([x[shots:] for x in xs])
    support_y = np.concatenate([y[:shots] for y in ys])
    query_y = np.concatenate([y[shots:] for y in ys])
    mean = np.concatenate([support, query]).mean(0)
    support, query = support - mean, query - mean
    support /= np.linalg.norm(support, axis=1, keepdims=True)
    query /= np.linalg.norm(query, axis=1, keepdims=True)
    return support, support_y, query, query_y


def _run(seed: int, episodes: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    for shots in (1, 5):
        acc: dict[str, list[float]] = {
            "nearest_prototype": [],
            "kmeans": [],
            "laplacian_shot": [],
            "laplacian_fixed_prototypes": [],
        }
        sweep: dict[str, list[float]] = {str(lam): [] for lam in SWEEP}
        for _ in range(episodes):
            s, sy, q, qy = _episode(rng, shots)
            acc["nearest_prototype"].append(
                float((laplacian_shot(s, sy, q, lam=0.0, update_prototypes=False).labels == qy).mean())
            )
            acc["kmeans"].append(float((laplacian_shot(s, sy, q, lam=0.0).labels == qy).mean()))
            acc["laplacian_shot"].append(float((laplacian_shot(s, sy, q, lam=LAMBDA, knn=3).labels == qy).mean()))
            fixed = laplacian_shot(s, sy, q, lam=LAMBDA, knn=3, update_prototypes=False)
            acc["laplacian_fixed_prototypes"].append(float((fixed.labels == qy).mean()))
            for lam in SWEEP:
                sweep[str(lam)].append(float((laplacian_shot(s, sy, q, lam=lam, knn=3).labels == qy).mean()))
        out[f"{shots}shot"] = {k: float(np.mean(v)) for k, v in acc.items()}
        out[f"{shots}shot_sweep"] = {k: float(np.mean(v)) for k, v in sweep.items()}
    return out


def main() -> None:
    """Run the episodes for every seed and write the JSON result."""
    args = benchmark_args(__doc__, default_out="results/transductive_claim.json", seeds=5, quick_seeds=2, threads=None)
    episodes = 40 if args.quick else 200
    runs = [_run(seed, episodes) for seed in args.seed_list]
    figures: dict[str, float] = {}
    summary: dict[str, Any] = {}
    for shots in ("1shot", "5shot"):
        for method in ("nearest_prototype", "kmeans", "laplacian_shot", "laplacian_fixed_prototypes"):
            stats = summarize([r[shots][method] for r in runs])
            figures[f"{method}_acc_{shots}"] = stats["mean"]
            summary[f"{method}_{shots}"] = stats
        gain = summarize([100 * (r[shots]["laplacian_shot"] - r[shots]["nearest_prototype"]) for r in runs])
        figures[f"gain_vs_nearest_prototype_{shots}"] = gain["mean"]
        summary[f"gain_{shots}"] = gain
        vs_kmeans = summarize([100 * (r[shots]["laplacian_shot"] - r[shots]["kmeans"]) for r in runs])
        figures[f"gain_vs_kmeans_{shots}"] = vs_kmeans["mean"]
        summary[f"gain_vs_kmeans_{shots}"] = vs_kmeans
    write_result(
        args.out,
        figures,
        details={
            "episodes_per_seed": episodes,
            "seeds": args.seed_list,
            "lambda": LAMBDA,
            "summary": summary,
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
