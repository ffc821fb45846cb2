"""The dense retriever: sentence-embedding similarity between the query problem and each demonstration's problem."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from malot.retrieval.base import CorpusRetriever
from malot.retrieval.corpus import Corpus, Demonstration
from malot.retrieval.encoders import SentenceEncoder
from malot.retrieval.index import IndexBackend, VectorIndex

__all__ = ["DenseRetriever"]

_INDEX_DIR = "index"


class DenseRetriever(CorpusRetriever):
    """Cosine similarity of off-the-shelf sentence embeddings (default MiniLM) over an exact vector index.

    Both sides embed the problem text (informal statement and Lean statement), so the untuned model compares like
    with like; UDR is the variant that learns separate query and candidate encoders.
    """

    kind = "dense"

    def __init__(
        self,
        corpus: Corpus,
        encoder: SentenceEncoder | None = None,
        *,
        target_split: str | None = None,
        backend: IndexBackend = "auto",
        index: VectorIndex | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__(corpus, target_split=target_split)
        self.encoder = encoder or SentenceEncoder()
        if index is None:
            index = VectorIndex(
                self.encoder.encode([d.input_text for d in corpus], progress=progress), backend=backend, kind="auto"
            )
        self.index = index

    def embed_query(self, query: Demonstration) -> Any:
        """The query's embedding (one row)."""
        return self.encoder.encode([query.input_text])

    def rank(self, query: Demonstration, depth: int) -> list[tuple[int, float]]:
        """Corpus indexes by cosine similarity, best first."""
        scores, ids = self.index.search(self.embed_query(query), depth)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True)]

    def rank_many(self, queries: Sequence[Demonstration], depth: int) -> list[list[tuple[int, float]]]:
        """Encode every query in one batch, then search them together."""
        scores, ids = self.index.search(self.encoder.encode([q.input_text for q in queries]), depth)
        return [
            [(int(i), float(s)) for i, s in zip(row_ids, row_s, strict=True)]
            for row_ids, row_s in zip(ids, scores, strict=True)
        ]

    def params(self) -> dict[str, Any]:
        """The encoder model path."""
        return {"model": str(self.encoder.model_path), "index_kind": self.index.kind}

    def save_state(self, directory: Path) -> None:
        """Save the corpus embeddings under ``index/``."""
        self.index.save(directory / _INDEX_DIR)

    @classmethod
    def from_saved(cls, directory: Path, corpus: Corpus, params: dict[str, Any], **options: Any) -> DenseRetriever:
        """Reload the embeddings; the encoder is the saved model path unless ``model`` is given."""
        model = options.get("model") or params.get("model")
        encoder = SentenceEncoder(model, device=options.get("device") or "cpu")
        index = VectorIndex.load(directory / _INDEX_DIR, backend=options.get("backend") or "auto")
        return cls(corpus, encoder, target_split=options.get("target_split"), index=index)
