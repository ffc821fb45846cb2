"""Doctor checks for retrieval report the corpus, the leakage rule, the encoder and a saved index."""

from __future__ import annotations

from pathlib import Path

from malot.config import RetrievalSettings, Settings
from malot.retrieval import Corpus, Demonstration, build_retriever
from malot.retrieval.doctor import checks


def _by_name(settings: Settings) -> dict[str, tuple[str, str]]:
    return {c.name: (c.status, c.detail) for c in checks(settings)}


def test_default_settings_are_healthy() -> None:
    found = _by_name(Settings())
    assert found["corpus"][0] == "ok" and "67 demonstrations" in found["corpus"][1]
    assert found["leakage guard"][0] == "ok" and found["vector index"][0] == "ok"
    assert found["encoder"][0] == "ok" and "MiniLM" in found["encoder"][1]


def test_problems_are_reported(tmp_path: Path, demos: Corpus) -> None:
    mixed = tmp_path / "mixed.jsonl"
    Corpus(
        [*list(demos)[:2], Demonstration(name="t", split="test", statement="theorem t : True := by", proof="trivial")]
    ).to_jsonl(mixed)
    found = _by_name(Settings(retrieval=RetrievalSettings(retriever="udr", corpus=mixed, target_split="test")))
    assert found["leakage guard"][0] == "error" and "test-split" in found["leakage guard"][1]
    assert found["UDR model"][0] == "missing"
    folder = build_retriever("bm25", demos).save(tmp_path / "idx")
    found = _by_name(Settings(retrieval=RetrievalSettings(retriever="bm25", index_dir=folder)))
    assert found["saved index"] == ("ok", f"bm25 over 67 demonstrations at {folder}")
    found = _by_name(Settings(retrieval=RetrievalSettings(index_dir=tmp_path / "nothing")))
    assert found["saved index"][0] == "warn"
