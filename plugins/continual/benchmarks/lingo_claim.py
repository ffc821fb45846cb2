"""LingoCL: a frozen classifier of class-name language embeddings forgets less than a learnt head in
class-incremental learning.

The paper's claim: replacing the learnt classifier of a class-incremental method by the (frozen) language
embeddings of the class names improves final accuracy, because old classes keep fixed, semantically placed
prototypes. Toy reproduction: 12 classes named after everyday objects arrive in 4 tasks of 3. Each class's data
is a Gaussian blob (noise 1) around a random 32-d projection (entries N(0, 1.5²)) of the MiniLM embedding of a
*different* caption of the class name ("an image showing a {} in the wild"), i.e. we assume the data's class
geometry agrees with language similarity, as the paper does for images. Heads, same replay method (10 kept
examples per task mixed into every batch), same extractor and budget: ``language`` (LingoCL, rows = MiniLM
embeddings of "a photo of a {}"), ``random`` (frozen random rows: frozen but not language, the ablation) and
``linear`` (learnt head grown per task: the usual baseline). The data scale (1.5) was raised once after a first
try at a smaller scale gave inseparable classes for every head (all ≈ 0.12); nothing else was tuned.

    python plugins/continual/benchmarks/lingo_claim.py --quick --out lingo_claim.json

Figures: final mean accuracy over all classes per head; ``gain_language_vs_linear`` and ``_vs_random``.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from malot_continual.core.synthetic import blobs
from malot_continual.lingo import train_class_incremental

from malot.benchmarking import benchmark_args, summarize, write_result
from malot.retrieval.encoders import SentenceEncoder

NAMES = [
    ["cat", "dog", "horse"],
    ["car", "truck", "bicycle"],
    ["apple", "banana", "cherry"],
    ["guitar", "piano", "violin"],
]
HEADS = ("language", "random", "linear")


def one_seed(seed: int, label_rows: torch.Tensor, data_rows: torch.Tensor, epochs: int) -> dict[str, Any]:
    """Every head on the same class-incremental stream."""
    g = torch.Generator().manual_seed(seed)
    centers = data_rows @ (torch.randn(data_rows.shape[1], 32, generator=g) * 1.5)
    train, test = [], []
    for t in range(len(NAMES)):
        labels = list(range(3 * t, 3 * t + 3))
        train.append(blobs(centers[labels], 40, noise=1.0, seed=seed * 10 + t, labels=labels))
        test.append(blobs(centers[labels], 200, noise=1.0, seed=seed * 10 + 5 + t, labels=labels))
    blocks = [label_rows[3 * t : 3 * t + 3] for t in range(len(NAMES))]
    out: dict[str, Any] = {"seed": seed}
    for head in HEADS:
        result = train_class_incremental(
            train,
            blocks,
            head=head,
            epochs=epochs,
            seed=seed,
            evaluation=test,
            rehearsal=10,  # type: ignore[arg-type]
        )
        out[head] = {"final_mean": result.final_mean, "matrix": result.accuracy}
    return out


def main() -> None:
    """Encode the names once, run every seed and write the report."""
    opts = benchmark_args(__doc__, default_out="lingo_claim.json", seeds=8, quick_seeds=3)
    start = time.perf_counter()
    flat = [n for block in NAMES for n in block]
    encoder = SentenceEncoder()
    vectors = encoder.encode(
        [f"a photo of a {n}" for n in flat] + [f"an image showing a {n} in the wild" for n in flat]
    )
    rows = torch.from_numpy(vectors).float()
    label_rows, data_rows = rows[: len(flat)], rows[len(flat) :]
    encode_s = time.perf_counter() - start
    runs = [one_seed(s, label_rows, data_rows, 10) for s in opts.seed_list]
    figures: dict[str, float] = {}
    spread: dict[str, Any] = {}
    for head in HEADS:
        stats = summarize([r[head]["final_mean"] for r in runs])
        figures[f"final_acc_{head}"] = stats["mean"]
        spread[head] = stats
    figures["gain_language_vs_linear"] = figures["final_acc_language"] - figures["final_acc_linear"]
    figures["gain_language_vs_random"] = figures["final_acc_language"] - figures["final_acc_random"]
    write_result(
        opts.out,
        figures,
        details={
            "spread": spread,
            "language_beats_linear": sum(r["language"]["final_mean"] > r["linear"]["final_mean"] for r in runs),
            "language_beats_random": sum(r["language"]["final_mean"] > r["random"]["final_mean"] for r in runs),
            "seeds": len(runs),
            "encoder": str(encoder.model_path),
            "encode_s": round(encode_s, 2),
            "runs": runs,
            "wall_s": round(time.perf_counter() - start, 2),
        },
    )


if __name__ == "__main__":
    main()
