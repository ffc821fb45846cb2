"""The retriever interface and the shared machinery of corpus-backed retrievers (leakage guard, save and load).

Every retriever answers ``retrieve(query, k)`` with up to ``k`` demonstrations, most relevant first; prompts put
them in :func:`malot.retrieval.text.prompt_order` (most relevant last). A saved retriever is a folder holding
``retriever.json`` (kind and parameters), ``corpus.jsonl`` and whatever state the kind needs (an index, encoders).
"""

from __future__ import annotations

import importlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from malot.errors import RetrievalError
from malot.retrieval.corpus import Corpus, Demonstration, Query, as_query, load_corpus
from malot.retrieval.leakage import LeakageGuard

__all__ = ["RETRIEVER_KINDS", "CorpusRetriever", "Retriever", "ScoredDemonstration", "load_saved_retriever"]

MANIFEST = "retriever.json"
CORPUS_FILE = "corpus.jsonl"
FORMAT_VERSION = 1

#: kind -> "module:Class" of every saved-retriever kind (imported only when used).
RETRIEVER_KINDS: dict[str, str] = {
    "random": "malot.retrieval.random_retriever:RandomRetriever",
    "bm25": "malot.retrieval.bm25:BM25Retriever",
    "dense": "malot.retrieval.dense:DenseRetriever",
    "hybrid": "malot.retrieval.hybrid:HybridRetriever",
    "udr": "malot.retrieval.udr.retriever:UDRRetriever",
}

ScoredDemonstration = tuple[Demonstration, float]


@runtime_checkable
class Retriever(Protocol):
    """Picks few-shot demonstrations for a problem."""

    def retrieve(self, query: Query, k: int) -> list[Demonstration]:
        """Up to ``k`` demonstrations for ``query`` (a problem or its statement text), most relevant first."""
        ...


class CorpusRetriever(ABC):
    """A retriever over a fixed :class:`Corpus`, guarded against leakage.

    Subclasses implement :meth:`rank` (corpus indexes with scores, best first, possibly including the query's own
    problem); this class removes the query's own problem, applies the split rule and cuts to ``k``.
    """

    kind: ClassVar[str]

    def __init__(self, corpus: Corpus, *, target_split: str | None = None) -> None:
        self.corpus = corpus
        self.guard = LeakageGuard(corpus, target_split=target_split)

    @abstractmethod
    def rank(self, query: Demonstration, depth: int) -> list[tuple[int, float]]:
        """The ``depth`` best corpus indexes for ``query`` with their scores, best first."""

    def rank_many(self, queries: Sequence[Demonstration], depth: int) -> list[list[tuple[int, float]]]:
        """:meth:`rank` for several queries (dense kinds override it to encode the queries in one batch)."""
        return [self.rank(q, depth) for q in queries]

    def retrieve_many(self, queries: Sequence[Query], k: int) -> list[list[Demonstration]]:
        """:meth:`retrieve` for several queries at once (faster for dense kinds: one encoder batch)."""
        return [[self.corpus[i] for i, _ in ranked] for ranked in self.ranked_ids_many(queries, k)]

    def ranked_ids_many(self, queries: Sequence[Query], k: int) -> list[list[tuple[int, float]]]:
        """:meth:`ranked_ids` for several queries, with the same leakage rules."""
        if k < 0:
            raise RetrievalError(f"k must be >= 0, got {k}")
        qs = [as_query(q) for q in queries]
        for q in qs:
            self.guard.check_query(q)
        if k == 0 or not len(self.corpus) or not qs:
            return [[] for _ in qs]
        excluded = [self.guard.excluded(q) for q in qs]
        depth = min(len(self.corpus), k + max(len(e) for e in excluded))
        ranked = self.rank_many(qs, depth)
        return [[(i, s) for i, s in r if i not in e][:k] for r, e in zip(ranked, excluded, strict=True)]

    def retrieve(self, query: Query, k: int) -> list[Demonstration]:
        """Up to ``k`` demonstrations, most relevant first, never the query's own problem."""
        return [demo for demo, _ in self.retrieve_scored(query, k)]

    def retrieve_scored(self, query: Query, k: int) -> list[ScoredDemonstration]:
        """Like :meth:`retrieve`, with each demonstration's retrieval score."""
        ranked = self.ranked_ids(query, k)
        return [(self.corpus[i], score) for i, score in ranked]

    def ranked_ids(self, query: Query, k: int) -> list[tuple[int, float]]:
        """Corpus indexes and scores of the ``k`` best admissible demonstrations, best first."""
        if k < 0:
            raise RetrievalError(f"k must be >= 0, got {k}")
        q = as_query(query)
        self.guard.check_query(q)
        if k == 0 or not len(self.corpus):
            return []
        excluded = self.guard.excluded(q)
        ranked = self.rank(q, min(len(self.corpus), k + len(excluded)))
        return [(i, s) for i, s in ranked if i not in excluded][:k]

    # -- persistence ---------------------------------------------------------------------------------------------

    def params(self) -> dict[str, Any]:
        """JSON-ready parameters written to the manifest (subclasses extend)."""
        return {}

    def save_state(self, directory: Path) -> None:  # noqa: B027 - optional hook, most kinds keep no extra state
        """Write kind-specific state (an index, encoders) into ``directory``."""

    @classmethod
    @abstractmethod
    def from_saved(cls, directory: Path, corpus: Corpus, params: dict[str, Any], **options: Any) -> CorpusRetriever:
        """Rebuild a retriever saved by :meth:`save` (``options``: load-time settings such as ``target_split``)."""

    def save(self, directory: str | Path) -> Path:
        """Save the retriever into ``directory`` (created if needed); returns the folder."""
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        self.corpus.to_jsonl(folder / CORPUS_FILE)
        self.save_state(folder)
        manifest = {"format": FORMAT_VERSION, "kind": self.kind, "size": len(self.corpus), "params": self.params()}
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        return folder


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of a saved retriever, or a :class:`RetrievalError` saying how to make one."""
    path = directory / MANIFEST
    if not path.is_file():
        raise RetrievalError(
            f"{directory} is not a saved retriever (no {MANIFEST})", hint="build one with 'malot retrieval index'"
        )
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RetrievalError(f"{path} is not valid JSON: {exc.msg}", hint="rebuild the index") from None
    if data.get("kind") not in RETRIEVER_KINDS:
        raise RetrievalError(f"{path} names an unknown retriever kind {data.get('kind')!r}")
    return data


def retriever_class(kind: str) -> type[CorpusRetriever]:
    """The class implementing a saved-retriever kind."""
    if kind not in RETRIEVER_KINDS:
        raise RetrievalError(f"unknown retriever kind {kind!r}", hint=f"choose one of {', '.join(RETRIEVER_KINDS)}")
    module_name, _, attr = RETRIEVER_KINDS[kind].partition(":")
    cls: type[CorpusRetriever] = getattr(importlib.import_module(module_name), attr)
    return cls


def load_saved_retriever(directory: str | Path, **options: Any) -> CorpusRetriever:
    """Load any retriever saved with :meth:`CorpusRetriever.save` (``options`` e.g. ``target_split``)."""
    folder = Path(directory)
    manifest = read_manifest(folder)
    corpus = load_corpus(folder / CORPUS_FILE, require_proofs=False)
    cls = retriever_class(str(manifest["kind"]))
    return cls.from_saved(folder, corpus, dict(manifest.get("params") or {}), **options)
