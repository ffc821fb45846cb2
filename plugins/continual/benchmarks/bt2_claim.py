"""BT²: an upgraded encoder's queries search the old index at least as well as the old encoder did (no re-indexing),
while the new model's own geometry is kept.

Zhou et al. (2023) claim BT²'s orthonormal basis transformation gives backward compatibility (new-query/old-gallery
retrieval ≥ old/old) without the usual loss of new/new accuracy. Two parts, both with the obvious simple baseline a
reviewer would try first — a ridge-regression linear map from new embeddings to old ones (``ridge``):

* ``text`` (malot's own retrieval stack): 50 solved problems in a saved malot dense index built with an *old* tiny
  random-weight sentence encoder (32-d); the *new* encoder is the offline MiniLM (384-d). Queries are paraphrases
  (R@1: the paraphrase finds its problem). BT² is trained on the corpus's own (text, old vector) pairs via
  ``upgrade_index`` and searched through ``upgraded_retriever`` (malot's DenseRetriever over the old vectors);
  seeds vary BT²'s training.
* ``vectors``: synthetic latent items seen through a noisy old encoder (16-d) and a sharper new one (24-d), 400
  gallery items, held-out query views; seeds vary everything.

    python plugins/continual/benchmarks/bt2_claim.py --quick --out bt2_claim.json

Figures: R@1 old/old, BT² new/old, ridge new/old, new/new (raw new encoder, re-indexed: the upper bound that needs
re-indexing) and BT²'s full embedding new/new, plus max |BᵀB − I|.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from malot_continual.bt2 import train_bt2, upgrade_index, upgraded_retriever
from malot_continual.core.synthetic import paraphrase_corpus
from malot_continual.core.tiny_encoder import build_tiny_sentence_encoder

from malot.benchmarking import benchmark_args, summarize, write_result


def recall_at_1(queries: Any, gallery: Any) -> float:
    """Share of queries whose best cosine match is the gallery row with the same index."""
    q = torch.nn.functional.normalize(torch.as_tensor(np.asarray(queries, np.float32)), dim=1)
    g = torch.nn.functional.normalize(torch.as_tensor(np.asarray(gallery, np.float32)), dim=1)
    return float(((q @ g.T).argmax(1) == torch.arange(len(q))).float().mean())


def ridge_map(new: torch.Tensor, old: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Least-squares linear map W (ridge α) with new @ W ≈ old."""
    eye = torch.eye(new.shape[1])
    return torch.linalg.solve(new.T @ new + alpha * eye, new.T @ old)


def orthonormality_error(head: Any) -> float:
    """max |BᵀB − I| of a BT² head."""
    b = head.basis_matrix()
    return float((b.T @ b - torch.eye(b.shape[0])).abs().max())


def vectors_seed(seed: int, epochs: int) -> dict[str, float]:
    """Synthetic old/new encoders of latent items."""
    g = torch.Generator().manual_seed(seed)
    n = 400
    items = torch.randn(n, 8, generator=g)
    old_map, new_map = torch.randn(8, 16, generator=g), torch.randn(8, 24, generator=g)

    def view(noise: float) -> torch.Tensor:
        return items + noise * torch.randn(n, 8, generator=g)

    gallery_old, query_old = view(0.6) @ old_map, view(0.6) @ old_map
    train_new, gallery_new, query_new = view(0.2) @ new_map, view(0.2) @ new_map, view(0.2) @ new_map
    head = train_bt2(train_new, gallery_old, extra=8, epochs=epochs, lr=0.01, tau=0.1, seed=seed)
    with torch.no_grad():
        compatible = head(query_new)[:, :16]
        full_q, full_g = head(query_new), head(gallery_new)
    return {
        "old_old": recall_at_1(query_old, gallery_old),
        "bt2_new_old": recall_at_1(compatible, gallery_old),
        "ridge_new_old": recall_at_1(query_new @ ridge_map(train_new, gallery_old), gallery_old),
        "new_new": recall_at_1(query_new, gallery_new),
        "bt2_new_new": recall_at_1(full_q, full_g),
        "orthonormality_error": orthonormality_error(head),
    }


def text_runs(seeds: list[int], epochs: int) -> list[dict[str, float]]:
    """malot's dense index with an old tiny encoder, upgraded to MiniLM by BT², once per seed."""
    from malot.retrieval.base import load_saved_retriever
    from malot.retrieval.dense import DenseRetriever
    from malot.retrieval.encoders import SentenceEncoder, default_encoder_path

    corpus, queries = paraphrase_corpus(10, 5)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        old_encoder = build_tiny_sentence_encoder(root / "old", dim=32, seed=0)
        DenseRetriever(corpus, SentenceEncoder(old_encoder)).save(root / "index")
        old = load_saved_retriever(root / "index")
        new_enc = SentenceEncoder(default_encoder_path())
        new_gallery = new_enc.encode([d.input_text for d in corpus])
        new_queries = new_enc.encode([q.input_text for q in queries])
        old_vectors = torch.from_numpy(np.load(root / "index" / "index" / "vectors.npy"))

        def ranked_recall(retriever: Any) -> float:
            ranked = retriever.rank_many(queries, 1)
            return float(np.mean([r[0][0] == i for i, r in enumerate(ranked)]))

        old_old = ranked_recall(old)
        ridge = ridge_map(torch.from_numpy(new_gallery), old_vectors)
        ridge_new_old = recall_at_1(torch.from_numpy(new_queries) @ ridge, old_vectors)
        runs = []
        for seed in seeds:
            upgrade = upgrade_index(
                root / "index", default_encoder_path(), root / f"bt2-{seed}", epochs=epochs, seed=seed
            )
            with torch.no_grad():
                full_q = upgrade.head(torch.from_numpy(new_queries))
                full_g = upgrade.head(torch.from_numpy(new_gallery))
            runs.append(
                {
                    "old_old": old_old,
                    "bt2_new_old": ranked_recall(upgraded_retriever(root / "index", upgrade)),
                    "ridge_new_old": ridge_new_old,
                    "new_new": recall_at_1(new_queries, new_gallery),
                    "bt2_new_new": recall_at_1(full_q, full_g),
                    "orthonormality_error": orthonormality_error(upgrade.head),
                }
            )
    return runs


def main() -> None:
    """Run both parts and write the report."""
    opts = benchmark_args(__doc__, default_out="bt2_claim.json", seeds=5, quick_seeds=2)
    start = time.perf_counter()
    epochs = 60 if opts.quick else 150
    text = text_runs(opts.seed_list, epochs)
    vectors = [vectors_seed(s, epochs) for s in opts.seed_list]
    figures: dict[str, float] = {}
    spread: dict[str, Any] = {}
    for part, runs in (("text", text), ("vectors", vectors)):
        for key in ("old_old", "bt2_new_old", "ridge_new_old", "new_new", "bt2_new_new"):
            stats = summarize([r[key] for r in runs])
            figures[f"{part}_r1_{key}"] = stats["mean"]
            spread[f"{part}_{key}"] = stats
        figures[f"{part}_max_orthonormality_error"] = max(r["orthonormality_error"] for r in runs)
    write_result(
        opts.out,
        figures,
        details={
            "spread": spread,
            "epochs": epochs,
            "seeds": opts.seed_list,
            "text_runs": text,
            "vector_runs": vectors,
            "wall_s": round(time.perf_counter() - start, 2),
        },
    )


if __name__ == "__main__":
    main()
