"""The leakage guard: a query never receives its own problem; test solutions never serve test targets."""

from __future__ import annotations

from pathlib import Path

import pytest

from malot.config import RetrievalSettings
from malot.errors import RetrievalError
from malot.retrieval import Corpus, Demonstration, build_retriever, load_retriever


def demo(name: str, statement: str, proof: str = "  simp", split: str = "valid") -> Demonstration:
    """A hand-written demonstration."""
    return Demonstration(name=name, split=split, statement=statement, proof=proof)


@pytest.mark.parametrize("kind", ["random", "bm25"])
def test_own_problem_is_never_returned(demos: Corpus, kind: str) -> None:
    retriever = build_retriever(kind, demos)
    for d in demos:
        got = retriever.retrieve(d, 66)
        assert len(got) == 66 and d.name not in {g.name for g in got}


def test_own_problem_is_excluded_by_statement_under_another_name(demos: Corpus) -> None:
    target = demos[5]
    renamed = Demonstration(name="renamed_copy", split="valid", statement="  " + target.statement.replace("\n", " "))
    got = build_retriever("bm25", demos).retrieve(renamed, 5)
    assert target.name not in {g.name for g in got}


def _mixed_corpus() -> Corpus:
    return Corpus(
        [
            demo("v1", "theorem v1 (a : ℕ) : a + 0 = a := by"),
            demo("t1", "theorem t1 (a : ℕ) : 0 + a = a := by", split="test"),
            demo("v2", "theorem v2 : (2 : ℕ) + 2 = 4 := by"),
        ],
        source="mixed.jsonl",
    )


def test_test_split_corpus_is_refused_for_test_targets() -> None:
    corpus = _mixed_corpus()
    with pytest.raises(RetrievalError, match="1 test-split solutions"):
        build_retriever("bm25", corpus, target_split="test")
    retriever = build_retriever("bm25", corpus)  # target split unknown up front: checked per query
    test_query = Demonstration(name="t9", split="test", statement="theorem t9 (b : ℕ) : b + 0 = b := by")
    with pytest.raises(RetrievalError, match="cannot serve test-split problems"):
        retriever.retrieve(test_query, 2)
    valid_query = test_query.model_copy(update={"split": "valid"})
    assert len(retriever.retrieve(valid_query, 2)) == 2
    assert build_retriever("random", corpus, target_split="valid").retrieve(valid_query, 3)


def test_load_retriever_arms_the_guard(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    _mixed_corpus().to_jsonl(path)
    with pytest.raises(RetrievalError, match="test-split"):
        load_retriever(RetrievalSettings(retriever="bm25", corpus=path, target_split="test"))
    shipped = load_retriever(RetrievalSettings(retriever="bm25", target_split="test"))  # valid-only corpus is fine
    assert len(shipped.retrieve("theorem q (x : ℝ) (h : 2 * x = 4) : x = 2 := by", 3)) == 3
    assert load_retriever(RetrievalSettings(retriever="none")).retrieve("theorem q : True := by", 3) == []
