"""Latent-label-shift claim: DDFA recovers classes and p(y|d) where clustering the inputs does not.

Synthetic latent-label-shift data: K = 3 classes, D = 5 domains with Dirichlet(0.5) label marginals ``p(y|d)`` (plus
one anchor domain per class), and class-conditionals shared across domains. Each class is a mixture of two Gaussian
blobs in 6-d placed so that blobs of different classes interleave: the classes are not the clusters of ``x``. Compared
on the same data (all methods end with the same separable-NMF factorisation):

* ``kmeans_x``: k-means on the standardised inputs with K clusters (the obvious baseline);
* ``kmeans_x_2k``: k-means on the inputs with 2K clusters, so a class's two blobs can each get a cluster;
* ``ddfa``: the tool — MLP domain discriminator, k-means on ``p̂(d|x)`` with K clusters, factorisation.

    python plugins/fewshot/benchmarks/latent_label_shift_claim.py --quick --out latent_label_shift_claim.json

Figures: class accuracy after the best permutation and the mean absolute error of ``p(y|d)`` (means over seeds).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from malot_fewshot.core.matching import best_permutation
from malot_fewshot.latent_label_shift import ddfa, factorise

from malot.benchmarking import benchmark_args, summarize, write_result

K, D, DIM = 3, 5, 6


def _data(rng: np.random.Generator, per_domain: int) -> tuple[np.ndarray, ...]:
    marg = rng.dirichlet(np.full(K, 0.5), size=D).T
    marg[:, :K] = 0.85 * np.eye(K) + 0.05  # anchor domains
    blobs = rng.normal(size=(2 * K, DIM)) * 2.5
    xs, ds, ys = [], [], []
    for d in range(D):
        y = rng.choice(K, size=per_domain, p=marg[:, d])
        blob = 2 * y + rng.integers(2, size=per_domain)
        xs.append(blobs[blob] + rng.normal(size=(per_domain, DIM)))
        ds.append(np.full(per_domain, d))
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ds), np.concatenate(ys), marg


def _score(
    clusters_or_labels: np.ndarray, table: np.ndarray, y: np.ndarray, d: np.ndarray, marg: np.ndarray
) -> dict[str, float]:
    confusion = np.zeros((K, K))
    np.add.at(confusion, (clusters_or_labels, y), 1.0)
    perm = best_permutation(confusion)
    recovered = np.zeros_like(table)
    recovered[perm] = table
    return {"acc": float((perm[clusters_or_labels] == y).mean()), "marg_mae": float(np.abs(recovered - marg).mean())}


def _kmeans_baseline(x: np.ndarray, d: np.ndarray, m: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import StandardScaler

    clusters = KMeans(n_clusters=m, n_init=10, random_state=seed).fit_predict(StandardScaler().fit_transform(x))
    counts = np.zeros((m, D))
    np.add.at(counts, (clusters, d), 1.0)
    a, b = factorise(counts / counts.sum(0, keepdims=True), K)
    post = a[clusters] * b[:, d].T
    return post.argmax(1), b


def _run(seed: int, per_domain: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    x, d, y, marg = _data(rng, per_domain)
    out: dict[str, Any] = {}
    for name, m in (("kmeans_x", K), ("kmeans_x_2k", 2 * K)):
        labels, table = _kmeans_baseline(x, d, m, seed)
        out[name] = _score(labels, table, y, d, marg)
    result = ddfa(x, d, K, discriminator="mlp", seed=seed)
    out["ddfa"] = _score(result.labels, result.label_given_domain, y, d, marg)
    return out


def main() -> None:
    """Run every seed and write the JSON result."""
    args = benchmark_args(
        __doc__, default_out="results/latent_label_shift_claim.json", seeds=5, quick_seeds=2, threads=None
    )
    per_domain = 400 if args.quick else 800
    runs = [_run(seed, per_domain) for seed in args.seed_list]
    figures: dict[str, float] = {}
    summary: dict[str, Any] = {}
    for method in ("kmeans_x", "kmeans_x_2k", "ddfa"):
        for metric in ("acc", "marg_mae"):
            stats = summarize([r[method][metric] for r in runs])
            figures[f"{method}_{metric}"] = stats["mean"]
            summary[f"{method}_{metric}"] = stats
    write_result(
        args.out, figures, details={"per_domain": per_domain, "seeds": args.seed_list, "summary": summary, "runs": runs}
    )


if __name__ == "__main__":
    main()
