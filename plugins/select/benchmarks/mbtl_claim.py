"""MBTL claim: choosing training contexts by GP-based Bayesian optimisation of generalised performance reaches more of
the all-contexts performance with a few trained tasks than random choice, and about as much as the evenly spaced
heuristic and a greedy oracle that knows every source performance in advance.

A contextual task family on 40 contexts in [0, 1] (25 in quick mode): training on context s reaches source
performance J(s) = 0.7 + 0.25·sin(2π(s + φ)) + noise (φ random per seed) and transfers zero-shot to x with
J(s → x) = max(0, J(s) - θ|s - x|), θ = 1.5 (the paper's linear generalisation gap). After each pick the trained
policy's performance on every context is known. Generalised performance of a set of trained contexts:
mean_x max_s J(s → x), normalised by training on every context (mean_x J(x)). Strategies: MBTL (known θ, β = 1),
random order, evenly spaced contexts, and a greedy oracle (knows J for all contexts).

    python plugins/select/benchmarks/mbtl_claim.py --quick --out mbtl.json
"""

from __future__ import annotations

import numpy as np
from malot_select.mbtl import mbtl_next

from malot.benchmarking import benchmark_args, summarize, write_result

SLOPE = 1.5


def generalised(trained: list[int], perf: np.ndarray, dist: np.ndarray) -> float:
    if not trained:
        return 0.0
    reach = np.maximum(0.0, perf[trained][:, None] - SLOPE * dist[trained])
    return float(reach.max(axis=0).mean())


def run(seed: int, quick: bool, budget: int) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    n = 25 if quick else 40
    contexts = np.linspace(0.0, 1.0, n)[:, None]
    dist = np.abs(contexts - contexts.T)
    phase = rng.uniform()
    perf = 0.7 + 0.25 * np.sin(2 * np.pi * (contexts[:, 0] + phase)) + 0.03 * rng.normal(size=n)
    upper = float(perf.mean())

    def curve(order: list[int]) -> list[float]:
        return [generalised(order[: k + 1], perf, dist) / upper for k in range(budget)]

    mbtl: list[int] = []
    for _ in range(budget):
        nxt, _ = mbtl_next(contexts, mbtl, [float(perf[i]) for i in mbtl], slope=SLOPE, prior_mean=0.7, prior_std=0.2)
        mbtl.append(nxt)
    oracle: list[int] = []
    for _ in range(budget):
        gains = [generalised([*oracle, i], perf, dist) if i not in oracle else -1.0 for i in range(n)]
        oracle.append(int(np.argmax(gains)))
    random_curves = [curve(list(rng.permutation(n)[:budget])) for _ in range(20)]
    curves = {
        "mbtl": curve(mbtl),
        "random": list(np.mean(random_curves, axis=0)),
        "evenly_spaced": [
            generalised([round((i + 0.5) * n / (k + 1) - 0.5) for i in range(k + 1)], perf, dist) / upper
            for k in range(budget)
        ],
        "greedy_oracle": curve(oracle),
    }
    return {"seed": seed, "curves": curves, "mbtl_order": mbtl, "unique_picks": len(set(mbtl)) == len(mbtl)}


def main() -> None:
    args = benchmark_args(__doc__, default_out="mbtl_claim.json", seeds=5, quick_seeds=2, threads=1)
    budget = 5 if args.quick else 8
    runs = [run(seed, args.quick, budget) for seed in args.seed_list]
    names = list(runs[0]["curves"])  # type: ignore[call-overload]
    at_budget = {k: summarize([r["curves"][k][-1] for r in runs]) for k in names}  # type: ignore[index]
    area = {k: summarize([float(np.mean(r["curves"][k])) for r in runs]) for k in names}  # type: ignore[index]
    figures = {f"normalised_performance_at_{budget}_{k}": v["mean"] for k, v in at_budget.items()}
    figures.update({f"mean_over_budgets_{k}": v["mean"] for k, v in area.items()})
    write_result(
        args.out,
        figures,
        details={
            "budget": budget,
            "at_budget": at_budget,
            "mean_over_budgets": area,
            "runs": runs,
            "claim": "MBTL beats random context choice and is close to the greedy oracle with few trained tasks",
            "claim_holds": area["mbtl"]["mean"] > area["random"]["mean"]
            and area["mbtl"]["mean"] >= area["greedy_oracle"]["mean"] - 0.05,
        },
    )


if __name__ == "__main__":
    main()
