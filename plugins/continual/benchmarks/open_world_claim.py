"""Open-world loop: energy-score rejection finds new classes (AUROC) and querying the rejected examples learns them
with fewer labels than random querying.

The wholistic open-world view (survey) argues a deployed learner must detect the unknown, ask for labels of what it
rejects, and update, instead of only adding labelled tasks. Toy reproduction on Gaussian blobs: 10 classes in 16-d
(centres N(0, 3²), unit noise); 3 are known at the start (60 labelled examples each); a stream of 6 batches of 150
unlabelled examples brings the other 7 classes progressively (batch ``i`` draws from the known classes plus new
classes 3..3+i). Per batch the learner may query ``budget`` = 10 labels. Strategies, same budget and training:
``novel`` (energy rejection at 95 % TPR, query the most novel rejected), ``random`` (query random examples; the
obvious baseline), ``msp`` (novel querying with max-softmax scores), ``static`` (no update: the closed-world model).

    python plugins/continual/benchmarks/open_world_claim.py --quick --out open_world_claim.json

Figures: mean novelty AUROC over batches (energy and msp), final closed-set accuracy over all 10 classes, new
classes found, and labels used (each must be ≤ 6 × budget).
"""

from __future__ import annotations

import time
from typing import Any

import torch
from malot_continual.core.data import LabelledData
from malot_continual.core.synthetic import blobs
from malot_continual.open_world import open_world_loop

from malot.benchmarking import benchmark_args, summarize, write_result

CLASSES, KNOWN, DIM, BATCHES, BUDGET = 10, 3, 16, 6, 10
STRATEGIES = {
    "novel": {"query": "novel", "score": "energy", "update": True},
    "random": {"query": "random", "score": "energy", "update": True},
    "msp": {"query": "novel", "score": "msp", "update": True},
    "static": {"query": "novel", "score": "energy", "update": False},
}


def stream_for(seed: int, epochs: int) -> dict[str, Any]:
    """Build the blobs stream for one seed and run every strategy on it."""
    g = torch.Generator().manual_seed(seed)
    centers = 3.0 * torch.randn(CLASSES, DIM, generator=g)
    initial = blobs(centers[:KNOWN], 60, seed=seed * 100)
    test = blobs(centers, 100, seed=seed * 100 + 1)
    stream = []
    for i in range(BATCHES):
        present = list(range(KNOWN + 1 + i))
        part = blobs(centers[present], 150 // len(present) + 1, seed=seed * 100 + 10 + i, labels=present)
        keep = torch.randperm(len(part), generator=g)[:150]
        stream.append(LabelledData(part.x[keep], part.y[keep]))
    out: dict[str, Any] = {"seed": seed}
    for name, opts in STRATEGIES.items():
        result = open_world_loop(
            initial,
            stream,
            budget=BUDGET,
            epochs=epochs,
            seed=seed,
            test=test,
            **opts,  # type: ignore[arg-type]
        )
        aurocs = [a for a in result.auroc if a is not None]
        out[name] = {
            "auroc": sum(aurocs) / len(aurocs),
            "final_acc": result.test_accuracy[-1],
            "found": len(result.classes) - KNOWN,
            "labels": result.labels_used,
            "per_batch": {"auroc": result.auroc, "acc": result.test_accuracy, "queried": result.queried},
        }
    return out


def main() -> None:
    """Run every seed and write the report."""
    opts = benchmark_args(__doc__, default_out="open_world_claim.json", seeds=6, quick_seeds=2)
    start = time.perf_counter()
    epochs = 15 if opts.quick else 20
    runs = [stream_for(s, epochs) for s in opts.seed_list]
    figures: dict[str, float] = {}
    spread: dict[str, Any] = {}
    for name in STRATEGIES:
        for key in ("auroc", "final_acc", "found", "labels"):
            stats = summarize([r[name][key] for r in runs])
            figures[f"{key}_{name}"] = stats["mean"]
            spread[f"{key}_{name}"] = stats
    figures["max_labels_used"] = max(r[n]["labels"] for r in runs for n in STRATEGIES)
    figures["label_budget"] = BATCHES * BUDGET
    write_result(
        opts.out,
        figures,
        details={
            "spread": spread,
            "epochs": epochs,
            "seeds": len(runs),
            "runs": runs,
            "wall_s": round(time.perf_counter() - start, 2),
        },
    )


if __name__ == "__main__":
    main()
