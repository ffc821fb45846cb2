"""Corpus model and loaders: the shipped file, MiniF2F-style rows, generic JSONL, bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from malot.data import MINIF2F_JSONL
from malot.errors import RetrievalError
from malot.retrieval import Corpus, Demonstration, as_query, candidate_text, load_corpus, prompt_order, query_text


def test_shipped_demonstrations_load(demos: Corpus) -> None:
    assert len(demos) == 67
    assert demos.splits == {"valid"}
    first = demos[0]
    assert first.name == "mathd_algebra_182"
    assert first.statement.startswith("theorem mathd_algebra_182")
    assert first.proof.strip().endswith("ring")
    # the doc-comment wrapper of informal_prefix is removed
    assert first.informal.startswith("Expand the following expression") and "/--" not in first.informal
    assert first.input_text.startswith("/-- Expand") and first.input_text.endswith(":= by")
    assert len({d.name for d in demos}) == 67
    assert demos.find("mathd_algebra_116") is not None and demos.find("nope") is None


def test_minif2f_rows_without_proofs_are_dropped() -> None:
    with pytest.raises(RetrievalError, match="no row has a proof"):
        load_corpus(MINIF2F_JSONL)
    problems = load_corpus(MINIF2F_JSONL, require_proofs=False, splits=["test"])
    assert len(problems) == 244 and problems.splits == {"test"}
    assert problems[0].header.startswith("import Mathlib")


def test_generic_jsonl_with_statement_proof_informal(write_jsonl: Callable[[str, list[dict[str, Any]]], Path]) -> None:
    path = write_jsonl(
        "mine.jsonl",
        [
            {"statement": "theorem t1 (a : ℕ) : a + 0 = a := by", "proof": "  simp", "informal": "Adding zero."},
            {"formal_statement": "theorem t2 : 1 + 1 = 2 := by", "formal_proof": "  norm_num", "split": "train"},
            {"statement": "theorem t3 : True := by"},  # no proof: not a demonstration
        ],
    )
    corpus = load_corpus(path)
    assert [d.name for d in corpus] == ["t1", "t2"]  # names recovered from the statements
    assert corpus[0].informal == "Adding zero." and corpus[0].split == "unknown"
    assert corpus[1].split == "train"
    assert corpus[1].code == "theorem t2 : 1 + 1 = 2 := by\n  norm_num"


def test_bad_files_raise_clear_errors(tmp_path: Path, write_jsonl: Callable[[str, list[dict[str, Any]]], Path]) -> None:
    with pytest.raises(RetrievalError, match="does not exist"):
        load_corpus(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"statement": "theorem a : True := by", "proof": "trivial"}\n{not json\n', encoding="utf-8")
    with pytest.raises(RetrievalError, match=r"bad.jsonl:2 is not valid JSON"):
        load_corpus(bad)
    with pytest.raises(RetrievalError, match="has no statement"):
        load_corpus(write_jsonl("nostmt.jsonl", [{"proof": "simp"}]))


def test_texts_and_prompt_order(demos: Corpus) -> None:
    d = demos[1]
    q = query_text(d)
    c = candidate_text(d)
    assert q.startswith("Complete the proof") and d.statement.strip() in q and d.proof.strip() not in q
    head, tab, tail = c.partition("\t")
    assert tab == "\t" and head == q and tail == d.code
    ranked = [demos[0], demos[1], demos[2]]  # most relevant first, as retrieve returns them
    assert prompt_order(ranked) == [demos[2], demos[1], demos[0]]  # most relevant last, next to the target


def test_as_query_accepts_statement_text() -> None:
    q = as_query("theorem foo (x : ℕ) : x = x := by")
    assert isinstance(q, Demonstration) and q.name == "foo" and q.split == "query"
    with pytest.raises(RetrievalError):
        as_query("   ")
