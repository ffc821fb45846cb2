"""The hybrid retriever: reciprocal-rank fusion of BM25 and dense rankings."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from malot.errors import RetrievalError
from malot.retrieval.base import CorpusRetriever
from malot.retrieval.corpus import Corpus, Demonstration

__all__ = ["HybridRetriever", "reciprocal_rank_fusion"]


def reciprocal_rank_fusion(rankings: Sequence[Sequence[int]], *, k: int = 60) -> list[tuple[int, float]]:
    """Fuse rankings (ids best first): each id scores ``sum(1 / (k + rank))``, rank counted from 1; best first."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, 1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


class HybridRetriever(CorpusRetriever):
    """Reciprocal-rank fusion of several retrievers over the same corpus (by default BM25 and dense)."""

    kind = "hybrid"

    def __init__(
        self,
        corpus: Corpus,
        parts: Sequence[CorpusRetriever],
        *,
        rrf_k: int = 60,
        depth: int = 100,
        target_split: str | None = None,
    ) -> None:
        super().__init__(corpus, target_split=target_split)
        if not parts:
            raise RetrievalError("a hybrid retriever needs at least one part")
        for part in parts:
            if len(part.corpus) != len(corpus):
                raise RetrievalError("every part of a hybrid retriever must use the hybrid's corpus")
        self.parts = list(parts)
        self.rrf_k = rrf_k
        self.depth = depth

    def rank(self, query: Demonstration, depth: int) -> list[tuple[int, float]]:
        """Fused ranking of each part's top ``max(depth, self.depth)``."""
        pool = min(len(self.corpus), max(depth, self.depth))
        rankings = [[i for i, _ in part.rank(query, pool)] for part in self.parts]
        return reciprocal_rank_fusion(rankings, k=self.rrf_k)[:depth]

    def rank_many(self, queries: Sequence[Demonstration], depth: int) -> list[list[tuple[int, float]]]:
        """Each part ranks all queries in one batch; then fuse per query."""
        pool = min(len(self.corpus), max(depth, self.depth))
        per_part = [part.rank_many(queries, pool) for part in self.parts]
        return [
            reciprocal_rank_fusion([[i for i, _ in part[n]] for part in per_part], k=self.rrf_k)[:depth]
            for n in range(len(queries))
        ]

    def params(self) -> dict[str, Any]:
        """Fusion settings and the parts' kinds."""
        return {"rrf_k": self.rrf_k, "depth": self.depth, "parts": [p.kind for p in self.parts]}

    def save_state(self, directory: Path) -> None:
        """Each part goes in ``part-N/`` as a full saved retriever."""
        for n, part in enumerate(self.parts):
            part.save(directory / f"part-{n}")

    @classmethod
    def from_saved(cls, directory: Path, corpus: Corpus, params: dict[str, Any], **options: Any) -> HybridRetriever:
        """Load every part, then fuse."""
        from malot.retrieval.base import load_saved_retriever

        count = len(params.get("parts") or [])
        parts = [load_saved_retriever(directory / f"part-{n}", **options) for n in range(count)]
        return cls(
            corpus,
            parts,
            rrf_k=int(params.get("rrf_k", 60)),
            depth=int(params.get("depth", 100)),
            target_split=options.get("target_split"),
        )
