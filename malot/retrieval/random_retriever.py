"""The random retriever: MA-LoT's baseline, deterministic per query and seed."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any

from malot.retrieval.base import CorpusRetriever
from malot.retrieval.corpus import Corpus, Demonstration

__all__ = ["RandomRetriever"]


class RandomRetriever(CorpusRetriever):
    """Uniformly random demonstrations; the same query and seed always get the same ones (reproducible runs)."""

    kind = "random"

    def __init__(self, corpus: Corpus, *, seed: int = 0, target_split: str | None = None) -> None:
        super().__init__(corpus, target_split=target_split)
        self.seed = seed

    def rank(self, query: Demonstration, depth: int) -> list[tuple[int, float]]:
        """A seeded random permutation of the corpus, cut to ``depth`` (scores are 0)."""
        key = hashlib.sha256(f"{self.seed}\0{query.name}\0{query.statement}".encode()).digest()
        rng = random.Random(int.from_bytes(key[:8], "big"))
        return [(i, 0.0) for i in rng.sample(range(len(self.corpus)), min(depth, len(self.corpus)))]

    def params(self) -> dict[str, Any]:
        """The seed."""
        return {"seed": self.seed}

    @classmethod
    def from_saved(cls, directory: Path, corpus: Corpus, params: dict[str, Any], **options: Any) -> RandomRetriever:
        """Rebuild from the manifest's seed."""
        return cls(corpus, seed=int(params.get("seed", 0)), target_split=options.get("target_split"))
