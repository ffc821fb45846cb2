"""Demonstration retrieval for the prover agents: corpora, the leakage guard, retrievers and UDR training.

``load_retriever(settings.retrieval)`` returns a :class:`Retriever`; ``retrieve(query, k)`` gives the ``k`` most
relevant demonstrations, best first, and :func:`prompt_order` puts the best last, just before the target problem.
Kinds: ``random`` (MA-LoT's baseline), ``bm25``, ``dense`` (MiniLM), ``hybrid`` (reciprocal-rank fusion) and ``udr``
(a dual encoder trained from language-model feedback, :mod:`malot.retrieval.udr`). Heavy libraries (torch,
sentence-transformers, faiss, bm25s) load only when a retriever that needs them is built.
"""

from __future__ import annotations

from malot.retrieval.base import CorpusRetriever, Retriever, load_saved_retriever
from malot.retrieval.corpus import Corpus, Demonstration, Query, as_query, demonstration_from_row, load_corpus
from malot.retrieval.leakage import LeakageGuard
from malot.retrieval.loader import NoRetriever, build_retriever, load_retriever
from malot.retrieval.text import LEAN_PROOF_INSTRUCTION, candidate_text, prompt_order, query_text

__all__ = [
    "LEAN_PROOF_INSTRUCTION",
    "Corpus",
    "CorpusRetriever",
    "Demonstration",
    "LeakageGuard",
    "NoRetriever",
    "Query",
    "Retriever",
    "as_query",
    "build_retriever",
    "candidate_text",
    "demonstration_from_row",
    "load_corpus",
    "load_retriever",
    "load_saved_retriever",
    "prompt_order",
    "query_text",
]
