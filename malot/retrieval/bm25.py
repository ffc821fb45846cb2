"""The BM25 retriever (``bm25s``): lexical match of the query problem against each demonstration's problem."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from malot.errors import BackendUnavailableError
from malot.retrieval.base import CorpusRetriever
from malot.retrieval.corpus import Corpus, Demonstration
from malot.retrieval.tokens import search_tokens

__all__ = ["BM25Retriever"]

_INDEX_DIR = "bm25"


def _bm25s() -> Any:
    try:
        import bm25s
    except ImportError:
        raise BackendUnavailableError("the BM25 retriever needs bm25s", hint="pip install 'malot[retrieval]'") from None
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


class BM25Retriever(CorpusRetriever):
    """Okapi BM25 over the demonstrations' informal text and statement (their proofs are not in the query)."""

    kind = "bm25"

    def __init__(
        self, corpus: Corpus, *, k1: float = 1.5, b: float = 0.75, target_split: str | None = None, _index: Any = None
    ) -> None:
        super().__init__(corpus, target_split=target_split)
        self.k1 = k1
        self.b = b
        if _index is None:
            _index = _bm25s().BM25(k1=k1, b=b)
            _index.index([search_tokens(d.input_text) or ["∅"] for d in corpus], show_progress=False)
        self._index = _index

    def scores(self, query: Demonstration) -> Any:
        """BM25 scores of every corpus entry for ``query`` (a NumPy vector in corpus order)."""
        return self._index.get_scores(search_tokens(query.input_text))

    def rank(self, query: Demonstration, depth: int) -> list[tuple[int, float]]:
        """Corpus indexes by BM25 score, best first (ties by corpus order)."""
        import numpy as np

        scores = self.scores(query)
        order = np.lexsort((np.arange(len(scores)), -scores))[:depth]
        return [(int(i), float(scores[i])) for i in order]

    def params(self) -> dict[str, Any]:
        """The BM25 parameters."""
        return {"k1": self.k1, "b": self.b}

    def save_state(self, directory: Path) -> None:
        """Save the bm25s index under ``bm25/``."""
        self._index.save(str(directory / _INDEX_DIR), show_progress=False)

    @classmethod
    def from_saved(cls, directory: Path, corpus: Corpus, params: dict[str, Any], **options: Any) -> BM25Retriever:
        """Load the saved bm25s index (rebuilt from the corpus if it is missing)."""
        index = None
        if (directory / _INDEX_DIR).is_dir():
            index = _bm25s().BM25.load(str(directory / _INDEX_DIR), show_progress=False)
        return cls(
            corpus,
            k1=float(params.get("k1", 1.5)),
            b=float(params.get("b", 0.75)),
            target_split=options.get("target_split"),
            _index=index,
        )
