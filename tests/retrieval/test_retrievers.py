"""Each retriever ranks sensibly, saves and loads to identical results, and is reachable from config and the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from malot.cli.app import main
from malot.config import RetrievalSettings
from malot.retrieval import Corpus, Demonstration, Retriever, build_retriever, load_retriever, load_saved_retriever
from malot.retrieval.dense import DenseRetriever
from malot.retrieval.encoders import SentenceEncoder
from malot.retrieval.hybrid import HybridRetriever, reciprocal_rank_fusion


@pytest.fixture(scope="module")
def encoder(minilm: Any) -> SentenceEncoder:
    """A MiniLM encoder that reuses the session's loaded model."""
    enc = SentenceEncoder()
    enc._model = minilm
    return enc


def _near_copy(d: Demonstration) -> Demonstration:
    """The same problem reworded lightly and renamed, so it is not excluded as the query's own problem."""
    return Demonstration(
        name="near_copy",
        split="valid",
        informal=d.informal.replace("Show that", "Prove that"),
        statement=d.statement.replace(d.name, "near_copy").replace("(", "( "),
    )


def test_random_is_seeded_and_per_query(demos: Corpus) -> None:
    a = build_retriever("random", demos, seed=1)
    b = build_retriever("random", demos, seed=1)
    c = build_retriever("random", demos, seed=2)
    assert isinstance(a, Retriever)
    names = [d.name for d in a.retrieve(demos[0], 5)]
    assert names == [d.name for d in b.retrieve(demos[0], 5)]
    assert names != [d.name for d in c.retrieve(demos[0], 5)]
    assert names != [d.name for d in a.retrieve(demos[1], 5)]


def test_bm25_finds_the_reworded_problem_first(demos: Corpus) -> None:
    bm25 = build_retriever("bm25", demos)
    hits = 0
    for d in list(demos)[:20]:
        scored = bm25.retrieve_scored(_near_copy(d), 3)
        assert [s for _, s in scored] == sorted((s for _, s in scored), reverse=True)
        hits += scored[0][0].name == d.name
    assert hits >= 18


def test_dense_and_hybrid_find_the_reworded_problem(demos: Corpus, encoder: SentenceEncoder) -> None:
    dense = DenseRetriever(demos, encoder)
    hybrid = HybridRetriever(demos, [build_retriever("bm25", demos), dense])
    for retriever in (dense, hybrid):
        top = [retriever.retrieve(_near_copy(d), 1)[0].name for d in list(demos)[:10]]
        assert sum(t == d.name for t, d in zip(top, demos, strict=False)) >= 9, retriever.kind


def test_batched_retrieval_matches_one_by_one(demos: Corpus, encoder: SentenceEncoder) -> None:
    dense = DenseRetriever(demos, encoder)
    retrievers = [
        build_retriever("bm25", demos),
        dense,
        HybridRetriever(demos, [build_retriever("bm25", demos), dense]),
    ]
    queries = [demos[3], demos[30], "theorem q (x : ℝ) (h : 3 * x = 6) : x = 2 := by"]
    for retriever in retrievers:
        batched = retriever.retrieve_many(queries, 4)
        assert [[d.name for d in r] for r in batched] == [[d.name for d in retriever.retrieve(q, 4)] for q in queries]
        assert demos[3].name not in {d.name for d in batched[0]}


def test_reciprocal_rank_fusion_math() -> None:
    fused = dict(reciprocal_rank_fusion([[1, 2, 3], [3, 1]], k=60))
    assert fused[1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[3] == pytest.approx(1 / 63 + 1 / 61)
    assert fused[2] == pytest.approx(1 / 62)
    assert [i for i, _ in reciprocal_rank_fusion([[1, 2, 3], [3, 1]], k=60)] == [1, 3, 2]


def test_every_kind_saves_and_loads_to_the_same_results(
    demos: Corpus, encoder: SentenceEncoder, tmp_path: Path
) -> None:
    small = demos.subset(range(30))
    dense = DenseRetriever(small, encoder)
    built = {
        "random": build_retriever("random", small, seed=3),
        "bm25": build_retriever("bm25", small),
        "dense": dense,
        "hybrid": HybridRetriever(small, [build_retriever("bm25", small), dense]),
    }
    queries = [demos[40], demos[41], "theorem q (x : ℝ) (h : 3 * x = 6) : x = 2 := by"]
    for kind, retriever in built.items():
        folder = retriever.save(tmp_path / kind)
        manifest = json.loads((folder / "retriever.json").read_text())
        assert manifest["kind"] == kind and manifest["size"] == 30
        loaded = load_saved_retriever(folder)
        if kind in ("dense", "hybrid"):  # reuse the loaded model instead of loading MiniLM again
            for part in [loaded, *getattr(loaded, "parts", [])]:
                if isinstance(part, DenseRetriever):
                    part.encoder._model = encoder.model
        for q in queries:
            assert [d.name for d in loaded.retrieve(q, 5)] == [d.name for d in retriever.retrieve(q, 5)], kind


def test_load_retriever_from_settings_reuses_a_saved_index(demos: Corpus, tmp_path: Path) -> None:
    folder = build_retriever("bm25", demos).save(tmp_path / "bm25")
    loaded = load_retriever(RetrievalSettings(retriever="bm25", index_dir=folder))
    assert loaded.retrieve(demos[0], 2)
    from malot.errors import RetrievalError

    with pytest.raises(RetrievalError, match="holds a bm25 index"):
        load_retriever(RetrievalSettings(retriever="random", index_dir=folder))
    with pytest.raises(RetrievalError, match="needs a trained UDR model"):
        load_retriever(RetrievalSettings(retriever="udr"))


def test_cli_index_and_query(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "idx"
    assert main(["retrieval", "index", "--retriever", "bm25", "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["size"] == 67
    assert main(["retrieval", "query", "mathd_algebra_116", "--name", "--index", str(out), "-k", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["kind"] == "bm25" and len(result["results"]) == 2
    assert "mathd_algebra_116" not in {r["name"] for r in result["results"]}  # its own solution is never shown
    assert main(["retrieval", "query", "no_such_problem", "--name", "--retriever", "bm25"]) == 2
