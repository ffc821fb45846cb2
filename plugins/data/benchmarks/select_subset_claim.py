"""Background information (an invariant representation of the whole ground set) improves neural subset selection.

Xie et al. (ICLR 2024) claim that scoring elements together with an invariant summary of their superset ``V`` finds
optimal subsets that plain element-wise set models miss, on tasks such as set anomaly detection. Synthetic
reproduction of that task: each ground set holds 10 points, 8 around a set-specific random centre and 2 outliers
around another; the optimal subset is the outliers (which points are outliers depends on the rest of the set). The
same scorer is trained with and without the pooled background term (``select_subset``'s ``background`` flag) on the
same training sets, and selects the top-2 of held-out sets. Figure: mean Jaccard index with the true subset.
Baselines: the model without background information (the paper's ablation) and random selection. A second task,
the same with 3 outliers among 12, checks the effect is not tied to one size.

    python plugins/data/benchmarks/select_subset_claim.py --quick --out select_subset.json
"""

from __future__ import annotations

from typing import Any

import numpy as np
from malot_data.core.synthetic import anomaly_sets
from malot_data.select_subset import jaccard, select_top, train_set_scorer

from malot.benchmarking import benchmark_args, summarize, write_result


def one_seed(seed: int, steps: int, train_sets: int, size: int, outliers: int) -> dict[str, Any]:
    """Train with and without background on one draw of the task; Jaccard on held-out sets."""
    sets, targets = anomaly_sets(train_sets, size=size, outliers=outliers, seed=seed)
    test_sets, test_targets = anomaly_sets(200, size=size, outliers=outliers, seed=10_000 + seed)
    truth = [sorted(np.flatnonzero(t).tolist()) for t in test_targets]
    out: dict[str, Any] = {}
    for name, background in (("background", True), ("no_background", False)):
        trained = train_set_scorer(sets, targets, background=background, steps=steps, hidden=32, seed=seed)
        picks = select_top(trained.model, test_sets, k=outliers)
        out[name] = float(np.mean([jaccard(p, t) for p, t in zip(picks, truth, strict=True)]))
    rng = np.random.default_rng(seed)
    out["random"] = float(np.mean([jaccard(sorted(rng.permutation(size)[:outliers].tolist()), t) for t in truth]))
    return out


def main() -> None:
    """Run the seeds for both task sizes and write the figures."""
    args = benchmark_args(
        __doc__, default_out="plugins/data/benchmarks/results/select_subset_claim.json", seeds=5, quick_seeds=2
    )
    steps = 200 if args.quick else 400
    tasks = {"10_points_2_outliers": (10, 2), "12_points_3_outliers": (12, 3)}
    runs = {task: [one_seed(s, steps, 300, size, k) for s in args.seed_list] for task, (size, k) in tasks.items()}
    stats = {task: {m: summarize([r[m] for r in rs]) for m in rs[0]} for task, rs in runs.items()}
    main_task = stats["10_points_2_outliers"]
    write_result(
        args.out,
        {
            "background_jaccard": main_task["background"]["mean"],
            "no_background_jaccard": main_task["no_background"]["mean"],
            "random_jaccard": main_task["random"]["mean"],
            "jaccard_gain_vs_no_background": main_task["background"]["mean"] - main_task["no_background"]["mean"],
            "background_jaccard_12_3": stats["12_points_3_outliers"]["background"]["mean"],
            "no_background_jaccard_12_3": stats["12_points_3_outliers"]["no_background"]["mean"],
        },
        details={"stats": stats, "steps": steps, "train_sets": 300, "runs": runs},
    )


if __name__ == "__main__":
    main()
