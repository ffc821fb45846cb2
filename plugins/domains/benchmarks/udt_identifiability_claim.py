"""Identifiable domain translation claim: matching distributions conditioned on an auxiliary variable recovers the
true unpaired translation, where matching only the marginals lands on a symmetric wrong solution.

Synthetic 2-D data (``malot_domains.core.synthetic.symmetric_clusters_2d``): the source is four Gaussian clusters on
the corners of a square (invariant under its 8 symmetries), the target is the source rotated by 0.5 rad and
shifted; an auxiliary label u (3 values) changes the cluster weights per value. The same networks, optimiser,
steps and restarts are used with the auxiliary labels (DIMENSION, Shrestha & Fu 2024) and without them (marginal
matching with cycle-consistency: the CycleGAN-style baseline the paper compares to).

    python plugins/domains/benchmarks/udt_identifiability_claim.py --quick --out udt.json

Figures: mean translation error ``||f(x) - T(x)||`` on the source samples for ``auxiliary_error`` and
``marginal_error``, and the share of seeds whose error is below 0.5 (a quarter of the cluster spacing):
``auxiliary_success_rate``, ``marginal_success_rate``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from malot_domains.core.synthetic import symmetric_clusters_2d
from malot_domains.translate import fit_translation

from malot.benchmarking import benchmark_args, summarize, write_result


def one_seed(seed: int, steps: int, restarts: int) -> dict[str, Any]:
    """Fit with and without the auxiliary variable on one draw of the data."""
    start = time.perf_counter()
    x, y, ux, uy, truth = symmetric_clusters_2d(seed, 1500)
    row: dict[str, Any] = {"seed": seed}
    for name, aux in (("auxiliary", True), ("marginal", False)):
        f, _, _ = fit_translation(x, y, ux, uy, use_auxiliary=aux, steps=steps, seed=seed, restarts=restarts)
        with torch.no_grad():
            mapped = f(torch.as_tensor(x, dtype=torch.float32)).numpy()
        error = float(np.linalg.norm(mapped - truth, axis=1).mean())
        row[f"{name}_error"] = error
        row[f"{name}_success"] = float(error < 0.5)
    row["seconds"] = time.perf_counter() - start
    return row


def main() -> None:
    args = benchmark_args(
        __doc__, default_out="plugins/domains/benchmarks/results/udt_identifiability_claim.json", seeds=6, quick_seeds=2
    )
    steps, restarts = (150, 1) if args.quick else (300, 2)
    rows = [one_seed(seed, steps, restarts) for seed in args.seed_list]
    keys = ["auxiliary_error", "marginal_error", "auxiliary_success", "marginal_success"]
    stats = {k: summarize([r[k] for r in rows]) for k in keys}
    figures = {
        "auxiliary_error": stats["auxiliary_error"]["mean"],
        "marginal_error": stats["marginal_error"]["mean"],
        "auxiliary_success_rate": stats["auxiliary_success"]["mean"],
        "marginal_success_rate": stats["marginal_success"]["mean"],
    }
    write_result(
        args.out,
        figures,
        details=dict(quick=args.quick, steps=steps, restarts=restarts, stats=stats, runs=rows),
    )


if __name__ == "__main__":
    main()
