"""Building the retriever the configuration asks for: ``load_retriever(settings.retrieval)``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from malot.config import RetrievalSettings
from malot.errors import RetrievalError
from malot.retrieval.base import CorpusRetriever, Retriever, load_saved_retriever, read_manifest
from malot.retrieval.corpus import Corpus, Demonstration, Query, load_corpus

__all__ = ["QUERY_UPGRADE_GROUP", "NoRetriever", "build_retriever", "load_query_upgrade", "load_retriever"]

#: Entry-point group of query-encoder upgrades: ``NAME = "package.module:function"``, where the function takes
#: ``(index_dir, upgrade_dir, *, target_split)`` and returns a retriever over the saved index whose queries are
#: embedded by the upgraded encoder. An upgrade folder names its kind in ``upgrade.json`` (``{"kind": NAME}``).
QUERY_UPGRADE_GROUP = "malot.retrieval.upgrades"
UPGRADE_MANIFEST = "upgrade.json"


class NoRetriever:
    """The ``none`` retriever: prompts get no demonstrations."""

    kind = "none"

    def retrieve(self, query: Query, k: int) -> list[Demonstration]:
        """Always empty."""
        return []


def build_retriever(
    kind: str,
    corpus: Corpus,
    *,
    model: str | Path | None = None,
    seed: int = 0,
    target_split: str | None = None,
    rrf_k: int = 60,
    device: str = "cpu",
    index_kind: str = "flat",
) -> CorpusRetriever:
    """Build a retriever of ``kind`` over ``corpus``.

    ``model`` is the encoder folder for dense/hybrid (default MiniLM) or the trained model folder for udr.
    """
    if kind == "random":
        from malot.retrieval.random_retriever import RandomRetriever

        return RandomRetriever(corpus, seed=seed, target_split=target_split)
    if kind == "bm25":
        from malot.retrieval.bm25 import BM25Retriever

        return BM25Retriever(corpus, target_split=target_split)
    if kind == "dense":
        from malot.retrieval.dense import DenseRetriever
        from malot.retrieval.encoders import SentenceEncoder

        return DenseRetriever(corpus, SentenceEncoder(model, device=device), target_split=target_split)
    if kind == "hybrid":
        from malot.retrieval.hybrid import HybridRetriever

        parts: Sequence[CorpusRetriever] = [
            build_retriever("bm25", corpus, target_split=target_split),
            build_retriever("dense", corpus, model=model, target_split=target_split, device=device),
        ]
        return HybridRetriever(corpus, parts, rrf_k=rrf_k, target_split=target_split)
    if kind == "udr":
        from malot.retrieval.udr.model import DualEncoder
        from malot.retrieval.udr.retriever import UDRRetriever

        if model is None or not DualEncoder.is_saved_model(model):
            raise RetrievalError(
                "the udr retriever needs a trained UDR model (retrieval.model) or a saved index (retrieval.index_dir)",
                hint="train one with 'malot retrieval train --out DIR' and set retrieval.model = DIR",
            )
        return UDRRetriever(corpus, DualEncoder.load(model, device=device), target_split=target_split)
    raise RetrievalError(f"unknown retriever {kind!r}", hint="choose none, random, bm25, dense, hybrid or udr")


def load_retriever(settings: RetrievalSettings | None = None) -> Retriever:
    """The retriever ``settings`` describe: a saved one from ``index_dir`` if it holds one, else built from the corpus.

    The leakage guard is armed with ``settings.target_split``: a corpus holding test-split solutions is refused for
    test-split targets here, before any prompt is built.
    """
    settings = settings or RetrievalSettings()
    if settings.retriever == "none" or settings.k == 0:
        return NoRetriever()
    if settings.query_upgrade is not None:
        return load_query_upgrade(settings)
    if settings.index_dir is not None and (Path(settings.index_dir) / "retriever.json").is_file():
        manifest = read_manifest(Path(settings.index_dir))
        if manifest["kind"] != settings.retriever:
            raise RetrievalError(
                f"{settings.index_dir} holds a {manifest['kind']} index, "
                f"but retrieval.retriever is {settings.retriever!r}",
                hint="set retrieval.retriever to match, or point retrieval.index_dir elsewhere",
            )
        return load_saved_retriever(settings.index_dir, target_split=settings.target_split, device=settings.device)
    corpus = load_corpus(settings.corpus)
    retriever = build_retriever(
        settings.retriever,
        corpus,
        model=settings.model,
        seed=settings.seed,
        target_split=settings.target_split,
        rrf_k=settings.rrf_k,
        device=settings.device,
    )
    if settings.index_dir is not None and settings.retriever in ("dense", "hybrid", "udr"):
        retriever.save(settings.index_dir)  # encoding is the slow part; reuse it next time
    return retriever


def load_query_upgrade(settings: RetrievalSettings) -> Retriever:
    """The saved index in ``settings.index_dir`` searched by the upgraded query encoder in ``settings.query_upgrade``.

    The upgrade's kind (``upgrade.json``) names a ``malot.retrieval.upgrades`` entry point; the plugin that ships it
    builds the retriever (the core names no plugin). The leakage guard is armed with ``settings.target_split``.
    """
    import importlib.metadata
    import json

    upgrade = Path(settings.query_upgrade or "")
    index_dir = settings.index_dir
    if index_dir is None or not (Path(index_dir) / "retriever.json").is_file():
        raise RetrievalError(
            "retrieval.query_upgrade needs the saved index it was trained for in retrieval.index_dir",
            hint="set retrieval.index_dir to the folder the upgrade tool read",
        )
    manifest = read_manifest(Path(index_dir))
    if manifest["kind"] != settings.retriever:
        raise RetrievalError(
            f"{index_dir} holds a {manifest['kind']} index, but retrieval.retriever is {settings.retriever!r}",
            hint="set retrieval.retriever to match",
        )
    try:
        kind = str(json.loads((upgrade / UPGRADE_MANIFEST).read_text(encoding="utf-8"))["kind"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RetrievalError(
            f"{upgrade} is not a query-encoder upgrade (no readable {UPGRADE_MANIFEST} with a kind): {exc}",
            hint="point retrieval.query_upgrade at the folder an upgrade tool wrote",
        ) from exc
    found = [ep for ep in importlib.metadata.entry_points(group=QUERY_UPGRADE_GROUP) if ep.name == kind]
    if not found:
        raise RetrievalError(
            f"no installed plugin provides the query upgrade {kind!r} (entry-point group {QUERY_UPGRADE_GROUP})",
            hint="install the plugin whose tool wrote the upgrade (malot tools list shows the installed ones)",
        )
    build = found[0].load()
    retriever: Retriever = build(Path(index_dir), upgrade, target_split=settings.target_split)
    return retriever
