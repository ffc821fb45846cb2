"""UDR at inference: exact inner-product search of the query encoder's vector over candidate-encoder vectors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from malot.retrieval.base import CorpusRetriever
from malot.retrieval.corpus import Corpus, Demonstration
from malot.retrieval.index import IndexBackend, VectorIndex
from malot.retrieval.text import candidate_text, query_text
from malot.retrieval.udr.model import DualEncoder

__all__ = ["UDRRetriever"]

_INDEX_DIR = "index"
_MODEL_DIR = "model"


class UDRRetriever(CorpusRetriever):
    """Retrieves with a trained :class:`DualEncoder`; candidates are indexed as instruction, problem, tab, proof."""

    kind = "udr"

    def __init__(
        self,
        corpus: Corpus,
        model: DualEncoder,
        *,
        target_split: str | None = None,
        backend: IndexBackend = "auto",
        index: VectorIndex | None = None,
        batch_size: int = 32,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__(corpus, target_split=target_split)
        self.model = model
        if index is None:
            texts = [candidate_text(d, model.instruction) for d in corpus]
            chunks = []
            for start in range(0, len(texts), batch_size):
                chunks.append(model.encode_candidates(texts[start : start + batch_size], batch_size))
                if progress is not None:
                    progress(len(texts[start : start + batch_size]))
            import numpy as np

            index = VectorIndex(
                np.concatenate(chunks) if chunks else np.zeros((0, 1), np.float32), backend=backend, kind="auto"
            )
        self.index = index
        self._model_ref: str | None = None

    def embed_query(self, query: Demonstration) -> Any:
        """The query encoder's vector for the instruction-prefixed query."""
        return self.model.encode_queries([query_text(query, self.model.instruction)])

    def rank(self, query: Demonstration, depth: int) -> list[tuple[int, float]]:
        """Corpus indexes by dot product, best first."""
        scores, ids = self.index.search(self.embed_query(query), depth)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True)]

    def rank_many(self, queries: Sequence[Demonstration], depth: int) -> list[list[tuple[int, float]]]:
        """Encode every query in one batch, then search them together."""
        vectors = self.model.encode_queries([query_text(q, self.model.instruction) for q in queries])
        scores, ids = self.index.search(vectors, depth)
        return [
            [(int(i), float(s)) for i, s in zip(row_ids, row_s, strict=True)]
            for row_ids, row_s in zip(ids, scores, strict=True)
        ]

    def params(self) -> dict[str, Any]:
        """Where the dual encoder lives (inside the folder unless it was loaded from elsewhere)."""
        if self._model_ref is not None:
            return {"model": self._model_ref}
        return {"model": str(self.model.path.resolve()) if self.model.path is not None else _MODEL_DIR}

    def save_state(self, directory: Path) -> None:
        """Save the candidate vectors, and the model if it has not been saved anywhere yet."""
        self.index.save(directory / _INDEX_DIR)
        if self.model.path is None:
            self.model.save(directory / _MODEL_DIR)
            self._model_ref = _MODEL_DIR

    @classmethod
    def from_saved(cls, directory: Path, corpus: Corpus, params: dict[str, Any], **options: Any) -> UDRRetriever:
        """Load the dual encoder and the candidate vectors."""
        model_ref = Path(str(params.get("model", _MODEL_DIR)))
        model_dir = model_ref if model_ref.is_absolute() else directory / model_ref
        model = DualEncoder.load(model_dir, device=options.get("device") or "cpu")
        index = VectorIndex.load(directory / _INDEX_DIR, backend=options.get("backend") or "auto")
        return cls(corpus, model, target_split=options.get("target_split"), index=index)
