"""``[retrieval] query_upgrade``: the loader hands a saved index and an upgrade folder to the plugin named by the
folder's kind (``malot.retrieval.upgrades`` entry points), arms the leakage guard, and refuses bad set-ups clearly."""

from __future__ import annotations

import importlib.metadata
import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from malot.config import RetrievalSettings
from malot.errors import RetrievalError
from malot.retrieval import Corpus, build_retriever, load_retriever
from malot.retrieval.loader import QUERY_UPGRADE_GROUP

CALLS: list[tuple[Path, Path, str | None]] = []


def _fake_upgrade(index_dir: Path, upgrade_dir: Path, *, target_split: str | None = None) -> Any:
    """A stand-in plugin function: records its call and returns the saved retriever itself."""
    from malot.retrieval.base import load_saved_retriever

    CALLS.append((index_dir, upgrade_dir, target_split))
    return load_saved_retriever(index_dir, target_split=target_split)


@pytest.fixture
def fake_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("malot_test_query_upgrade")
    module.build = _fake_upgrade  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    eps = importlib.metadata.EntryPoints(
        [importlib.metadata.EntryPoint(name="fake", value=f"{module.__name__}:build", group=QUERY_UPGRADE_GROUP)]
    )
    real = importlib.metadata.entry_points

    def entry_points(**params: Any) -> Any:
        return eps if params.get("group") == QUERY_UPGRADE_GROUP else real(**params)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    CALLS.clear()


def _saved_bm25(demos: Corpus, folder: Path) -> Path:
    build_retriever("bm25", demos).save(folder)
    return folder


def _upgrade(folder: Path, kind: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "upgrade.json").write_text(json.dumps({"kind": kind}), encoding="utf-8")
    return folder


def test_the_upgrade_kind_picks_the_plugin_and_the_guard_is_armed(
    demos: Corpus, tmp_path: Path, fake_plugin: None
) -> None:
    index = _saved_bm25(demos, tmp_path / "index")
    upgrade = _upgrade(tmp_path / "up", "fake")
    settings = RetrievalSettings(retriever="bm25", index_dir=index, query_upgrade=upgrade, target_split="test")
    retriever = load_retriever(settings)
    assert [(index, upgrade, "test")] == CALLS
    assert retriever.retrieve(demos[0], 2)


def test_bad_set_ups_are_one_clear_error(demos: Corpus, tmp_path: Path, fake_plugin: None) -> None:
    upgrade = _upgrade(tmp_path / "up", "fake")
    with pytest.raises(RetrievalError, match="needs the saved index"):
        load_retriever(RetrievalSettings(retriever="bm25", query_upgrade=upgrade))
    index = _saved_bm25(demos, tmp_path / "index")
    with pytest.raises(RetrievalError, match="holds a bm25 index"):
        load_retriever(RetrievalSettings(retriever="dense", index_dir=index, query_upgrade=upgrade))
    with pytest.raises(RetrievalError, match="not a query-encoder upgrade"):
        load_retriever(RetrievalSettings(retriever="bm25", index_dir=index, query_upgrade=tmp_path / "nowhere"))
    unknown = _upgrade(tmp_path / "other", "nope")
    with pytest.raises(RetrievalError, match="no installed plugin provides the query upgrade 'nope'"):
        load_retriever(RetrievalSettings(retriever="bm25", index_dir=index, query_upgrade=unknown))
    assert CALLS == []
