"""Fixtures for the retrieval tests: the shipped corpus, small synthetic corpora and one shared MiniLM load."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from malot.retrieval import Corpus, load_corpus


@pytest.fixture(scope="session")
def demos() -> Corpus:
    """The shipped 67 solved MiniF2F-valid demonstrations."""
    return load_corpus()


@pytest.fixture(scope="session")
def minilm() -> Any:
    """The offline MiniLM sentence-transformers model, loaded once per test session (CPU)."""
    from malot.retrieval.encoders import load_sentence_transformer

    return load_sentence_transformer(None, device="cpu", max_seq_length=64)


@pytest.fixture
def write_jsonl(tmp_path: Path) -> Callable[[str, list[dict[str, Any]]], Path]:
    """Write rows as a JSONL file under the test's tmp folder."""

    def write(name: str, rows: list[dict[str, Any]]) -> Path:
        path = tmp_path / name
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        return path

    return write
