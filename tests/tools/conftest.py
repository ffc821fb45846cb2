"""Fixtures for tool tests: a fresh default registry, and plugin modules written to a temporary directory."""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import malot.tools.registry as registry_module
from malot.tools import ToolRegistry
from malot.tools.plugins import reset_plugins


@pytest.fixture
def fresh_default_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[ToolRegistry]:
    """Swap the process-wide default registry for an empty one (restored afterwards) and forget plugin statuses."""
    fresh = ToolRegistry(on_miss=registry_module._load_plugins_into)
    monkeypatch.setattr(registry_module, "_DEFAULT", fresh)
    monkeypatch.delenv("MALOT_PLUGINS", raising=False)
    reset_plugins()
    yield fresh
    reset_plugins()


@pytest.fixture
def make_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], str]]:
    """Write Python source as a uniquely named importable module under ``tmp_path``; returns the module name."""
    monkeypatch.syspath_prepend(str(tmp_path))
    created: list[str] = []

    def make(source: str) -> str:
        name = f"malot_test_plugin_{uuid.uuid4().hex[:8]}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        created.append(name)
        return name

    yield make
    for name in created:
        sys.modules.pop(name, None)
