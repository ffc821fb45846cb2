"""LLP-BP claim: BP pseudo-labels + embedding refinement beat DLLP and proportion-as-label for large bags.

Synthetic binary task: two classes, each a mixture of 3 Gaussian blobs in 10-d (so the classes are cluster-structured
but not linearly separable); training instances are put into random bags of size 32 or 64 and only each bag's
positive fraction is given. Compared, all with the same MLP (10 → 32 → 1) and step budget:

* ``proportion_label``: every instance labelled with its bag's proportion (soft BCE), the first thing one tries;
* ``dllp``: the standard bag-level loss (BCE between the bag's mean prediction and its proportion; Ardehaly & Culotta);
* ``llp_bp``: the tool (2 rounds, 5-NN graph, coupling 1, hard count factors); settings fixed before the run.

    python plugins/fewshot/benchmarks/llp_bp_claim.py --quick --out llp_bp_claim.json

Figures: instance test accuracy of each method (means over seeds) per bag size and the gains of llp_bp over the
better baseline (percentage points).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from malot_fewshot.core.training import fit_full_batch, mlp, seeded
from malot_fewshot.llp_bp import llp_bp

from malot.benchmarking import benchmark_args, summarize, write_result

DIM, BLOBS = 10, 3


def _data(rng: np.random.Generator, centres: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    comp = rng.integers(2 * BLOBS, size=n)
    x = centres[comp] + rng.normal(size=(n, DIM))
    return x, (comp % 2).astype(np.int64)


def _baseline(x: np.ndarray, bags: np.ndarray, props: np.ndarray, kind: str, seed: int) -> torch.nn.Module:
    seeded(seed)
    net = mlp(DIM, 32, 1)
    xt = torch.as_tensor(x, dtype=torch.float32)
    bt = torch.as_tensor(bags)
    pt = torch.as_tensor(props, dtype=torch.float32)
    sizes = torch.bincount(bt).float()

    def loss() -> torch.Tensor:
        logits = net(xt).squeeze(1)
        if kind == "proportion_label":
            return torch.nn.functional.binary_cross_entropy_with_logits(logits, pt[bt])
        mean = torch.zeros(len(sizes)).index_add(0, bt, torch.sigmoid(logits)) / sizes
        return torch.nn.functional.binary_cross_entropy(mean.clamp(1e-6, 1 - 1e-6), pt)

    fit_full_batch(list(net.parameters()), loss, steps=600, lr=1e-2)
    return net


def _accuracy(net: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        pred = (net(torch.as_tensor(x, dtype=torch.float32)).squeeze(1) > 0).numpy()
    return float((pred == y).mean())


def _run(seed: int, n: int, bag_size: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(2 * BLOBS, DIM)) * 1.6
    x, y = _data(rng, centres, n)
    x_test, y_test = _data(rng, centres, 2000)
    bags = rng.permutation(np.arange(n) % (n // bag_size))
    props = np.bincount(bags, weights=y) / np.bincount(bags)
    out = {
        kind: _accuracy(_baseline(x, bags, props, kind, seed), x_test, y_test) for kind in ("proportion_label", "dllp")
    }
    result = llp_bp(x, bags, props, rounds=2, knn=5, coupling=1.0, steps=300, seed=seed)
    out["llp_bp"] = float(((result.predict_proba(x_test) > 0.5) == y_test).mean())
    out["llp_bp_pseudo_label_acc"] = float(((result.marginals > 0.5) == y).mean())
    return out


def main() -> None:
    """Run both bag sizes for every seed and write the JSON result."""
    args = benchmark_args(__doc__, default_out="results/llp_bp_claim.json", seeds=5, quick_seeds=2)
    n = 1024 if args.quick else 2048
    figures: dict[str, float] = {}
    details: dict[str, Any] = {"n_train": n, "seeds": args.seed_list}
    for bag_size in (32, 64):
        runs = [_run(seed, n, bag_size) for seed in args.seed_list]
        stats = {k: summarize([r[k] for r in runs]) for k in runs[0]}
        for k in ("proportion_label", "dllp", "llp_bp"):
            figures[f"{k}_acc_bag{bag_size}"] = stats[k]["mean"]
        gains = [100 * (r["llp_bp"] - max(r["proportion_label"], r["dllp"])) for r in runs]
        figures[f"gain_vs_best_baseline_bag{bag_size}"] = summarize(gains)["mean"]
        details[f"bag{bag_size}"] = {"summary": stats, "gain": summarize(gains), "runs": runs}
    write_result(args.out, figures, details=details)


if __name__ == "__main__":
    main()
