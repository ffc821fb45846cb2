"""BT²: BᵀB = I, new-query/old-gallery retrieval at least old/old, and it works on malot's own saved indexes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from malot_continual.bt2 import Bt2Upgrade, bt2_head, bt2_upgrade, train_bt2, upgrade_index, upgraded_retriever
from malot_continual.core.synthetic import paraphrase_corpus

from malot.errors import ToolError
from malot.retrieval.corpus import Corpus, Demonstration
from malot.tools import ToolRegistry


def _recall_at_1(queries: torch.Tensor, gallery: torch.Tensor) -> float:
    scores = torch.nn.functional.normalize(queries, dim=1) @ torch.nn.functional.normalize(gallery, dim=1).T
    return float((scores.argmax(1) == torch.arange(len(queries))).float().mean())


def _views(n: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Latent items; a noisy old encoder (16-d) and a sharper new one (24-d); gallery and (other-view) queries."""
    g = torch.Generator().manual_seed(seed)
    items = torch.randn(n, 8, generator=g)
    old_map, new_map = torch.randn(8, 16, generator=g), torch.randn(8, 24, generator=g)

    def view(noise: float) -> torch.Tensor:
        return items + noise * torch.randn(n, 8, generator=g)

    gallery_old = view(0.6) @ old_map
    query_old, query_new, train_new = view(0.6) @ old_map, view(0.2) @ new_map, view(0.2) @ new_map
    return gallery_old, query_old, query_new, train_new


@pytest.mark.slow
def test_basis_is_orthonormal_and_new_query_old_gallery_beats_old_old() -> None:
    gallery_old, query_old, query_new, train_new = _views(200)
    head = train_bt2(train_new, gallery_old, extra=8, epochs=60, lr=0.01, tau=0.1)
    b = head.basis_matrix()
    assert b.shape == (32, 32)
    assert torch.allclose(b.T @ b, torch.eye(32), atol=1e-5)
    with torch.no_grad():
        compatible = head(query_new)[:, :16]
    assert _recall_at_1(compatible, gallery_old) >= _recall_at_1(query_old, gallery_old)


def test_the_transformation_preserves_the_widened_new_geometry_exactly() -> None:
    head = bt2_head(24, 16, 8)
    x = torch.randn(5, 24)
    with torch.no_grad():
        e, u = head(x), head.widen(x)
    assert torch.allclose(torch.cdist(e, e), torch.cdist(u, u), atol=1e-4)


def test_bad_sizes_and_pairs() -> None:
    with pytest.raises(ToolError, match="narrower"):
        bt2_head(8, 16, 4)
    with pytest.raises(ToolError, match="pair them"):
        train_bt2(torch.randn(5, 8), torch.randn(4, 8))
    with pytest.raises(ToolError, match="NaN"):
        train_bt2(torch.full((5, 8), float("nan")), torch.randn(5, 8))


def _corpus() -> tuple[Corpus, list[Demonstration]]:
    corpus, queries = paraphrase_corpus()
    return corpus, queries


@pytest.fixture(scope="module")
def old_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from malot_continual.core.tiny_encoder import build_tiny_sentence_encoder

    return build_tiny_sentence_encoder(tmp_path_factory.mktemp("old-encoder"), dim=32, seed=0)


def _recall(retriever: Any, queries: list[Demonstration]) -> float:
    ranked = retriever.rank_many(queries, 1)
    return float(np.mean([r[0][0] == i for i, r in enumerate(ranked)]))


@pytest.mark.slow
def test_upgraded_dense_encoder_searches_malots_old_index(old_encoder: Path, tmp_path: Path) -> None:
    from malot.retrieval.base import load_saved_retriever
    from malot.retrieval.dense import DenseRetriever
    from malot.retrieval.encoders import SentenceEncoder, default_encoder_path

    corpus, queries = _corpus()
    DenseRetriever(corpus, SentenceEncoder(old_encoder)).save(tmp_path / "index")
    vectors_before = np.load(tmp_path / "index" / "index" / "vectors.npy")
    registry = ToolRegistry()
    registry.register(bt2_upgrade)
    out = registry.run_sync(
        "bt2_upgrade",
        {
            "index_dir": str(tmp_path / "index"),
            "new_encoder": str(default_encoder_path()),
            "out": str(tmp_path / "bt2"),
            "epochs": 60,
        },
        isolation="inline",
    )
    assert out.d_old == 32 and out.d_new == 384 and out.orthonormality_error < 1e-4  # type: ignore[attr-defined]
    old = load_saved_retriever(tmp_path / "index")
    new = upgraded_retriever(tmp_path / "index", tmp_path / "bt2")
    assert np.array_equal(new.index.vectors, vectors_before)  # type: ignore[attr-defined]  # nothing re-encoded
    assert _recall(new, queries) >= _recall(old, queries)
    assert [d.name for d in new.retrieve(queries[0], 3)]  # the ordinary retrieve path works too
    # the prover's path: [retrieval] index_dir + query_upgrade, through the malot.retrieval.upgrades entry point
    from malot.config import RetrievalSettings
    from malot.retrieval.loader import load_retriever

    settings = RetrievalSettings(retriever="dense", index_dir=tmp_path / "index", query_upgrade=tmp_path / "bt2")
    configured = load_retriever(settings)
    ranked = [[i for i, _ in r] for r in configured.rank_many(queries, 3)]  # type: ignore[attr-defined]
    assert ranked == [[i for i, _ in r] for r in new.rank_many(queries, 3)]
    assert np.array_equal(configured.index.vectors, vectors_before)  # type: ignore[attr-defined]


@pytest.mark.slow
def test_upgrade_of_a_udr_index_and_bad_index_folders(old_encoder: Path, tmp_path: Path) -> None:
    from malot.retrieval.bm25 import BM25Retriever
    from malot.retrieval.encoders import load_sentence_transformer
    from malot.retrieval.udr.model import DualEncoder
    from malot.retrieval.udr.retriever import UDRRetriever

    corpus, queries = _corpus()
    dual = DualEncoder(load_sentence_transformer(old_encoder), load_sentence_transformer(old_encoder))
    UDRRetriever(corpus, dual).save(tmp_path / "udr")
    upgrade = upgrade_index(tmp_path / "udr", old_encoder, tmp_path / "bt2", epochs=5, extra=0)
    assert isinstance(Bt2Upgrade.load(tmp_path / "bt2"), Bt2Upgrade) and upgrade.d_old == 32
    retriever = upgraded_retriever(tmp_path / "udr", tmp_path / "bt2")
    assert len(retriever.rank_many(queries[:2], 3)[0]) == 3
    BM25Retriever(corpus).save(tmp_path / "bm25")
    with pytest.raises(ToolError, match="dense or udr"):
        upgrade_index(tmp_path / "bm25", old_encoder, tmp_path / "x")
