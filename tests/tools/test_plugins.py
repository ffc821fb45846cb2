"""Plugin discovery through the ``malot.tools`` entry-point group.

Two ways: faking ``importlib.metadata`` entry points (real ``EntryPoint`` objects pointing at modules written to a
temporary directory), and installing a real tiny plugin distribution (``tests/data/tool_plugin``) with pip into a
temporary target directory, then discovering it in-process and through the ``malot`` CLI in a subprocess.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from malot.config import load_settings
from malot.tools import ToolRegistry, get_registry, load_plugins
from malot.tools.doctor import checks

REPO = Path(__file__).resolve().parents[2]
PLUGIN_SOURCE = REPO / "tests" / "data" / "tool_plugin"

GOOD = """
    from malot.tools import tool

    @tool(family="fake")
    def fake_echo(text: str) -> str:
        \"\"\"Echo the text.\"\"\"
        return text
"""

OTHER = """
    from malot.tools import tool

    @tool(family="other")
    def other_len(text: str) -> int:
        \"\"\"Length of the text.\"\"\"
        return len(text)
"""

BROKEN = """
    raise ImportError("this plugin needs a package that is not installed")
"""


def _fake_entry_points(monkeypatch: pytest.MonkeyPatch, mapping: dict[str, str]) -> None:
    eps = importlib.metadata.EntryPoints(
        importlib.metadata.EntryPoint(name=name, value=value, group="malot.tools") for name, value in mapping.items()
    )

    def entry_points(**params: str) -> importlib.metadata.EntryPoints:
        assert set(params) == {"group"}, params
        # only tool plugins here; the other groups (the doctor also asks for ``malot.decoding``) have none
        return eps if params["group"] == "malot.tools" else importlib.metadata.EntryPoints(())

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)


def test_fake_entry_points_good_broken_and_twice(
    monkeypatch: pytest.MonkeyPatch, make_module: Callable[[str], str], fresh_default_registry: ToolRegistry
) -> None:
    good, broken = make_module(GOOD), make_module(BROKEN)
    _fake_entry_points(monkeypatch, {"good": good, "broken": broken})
    statuses = {s.name: s for s in load_plugins()}
    assert statuses["good"].state == "loaded" and statuses["good"].tools == ("fake_echo",)
    assert statuses["broken"].state == "failed"
    assert "ImportError: this plugin needs a package" in statuses["broken"].error
    assert "fake_echo" in fresh_default_registry
    assert fresh_default_registry.get("fake_echo").metadata.plugin == "good"
    assert fresh_default_registry.run_sync("fake_echo", {"text": "hi"}).model_dump() == {"result": "hi"}
    # loading again is harmless: same statuses, same tools, no duplicate-name errors
    again = {s.name: s for s in load_plugins()}
    assert again == statuses
    importlib.reload(sys.modules[good])  # even a re-executed registration module re-registers cleanly
    assert fresh_default_registry.names() == ["fake_echo"]
    doctor = {c.name: c for c in checks(load_settings(env={}))}
    assert doctor["plugin good"].status == "ok" and "1 tools" in doctor["plugin good"].detail
    assert doctor["plugin broken"].status == "error"


def test_allow_list_from_env_and_settings(
    monkeypatch: pytest.MonkeyPatch, make_module: Callable[[str], str], fresh_default_registry: ToolRegistry
) -> None:
    _fake_entry_points(monkeypatch, {"good": make_module(GOOD), "other": make_module(OTHER)})
    settings = load_settings(env={"MALOT_PLUGINS": "other"})
    assert settings.tools.plugins == ["other"]
    statuses = {s.name: s.state for s in load_plugins(settings=settings)}
    assert statuses == {"good": "disabled", "other": "loaded"}
    assert fresh_default_registry.names() == ["other_len"]
    monkeypatch.setenv("MALOT_PLUGINS", "")  # the environment wins over settings; empty loads none
    assert {s.name: s.state for s in load_plugins(settings=settings)} == {"good": "disabled", "other": "disabled"}
    monkeypatch.setenv("MALOT_PLUGINS", "good, other")
    get_registry()
    assert fresh_default_registry.names() == ["fake_echo", "other_len"]


def test_a_second_registry_gets_the_tools_of_an_already_imported_plugin(
    monkeypatch: pytest.MonkeyPatch, make_module: Callable[[str], str], fresh_default_registry: ToolRegistry
) -> None:
    # the plugin's module registers into the default registry when first imported; loading it into another
    # registry later imports nothing new, and must still hand that registry the plugin's tools
    module = make_module(GOOD)
    _fake_entry_points(monkeypatch, {"good": module})
    load_plugins()
    assert module in sys.modules and "fake_echo" in fresh_default_registry
    other = ToolRegistry()
    [status] = load_plugins(registry=other)
    assert status.state == "loaded" and status.tools == ("fake_echo",)
    assert other.names() == ["fake_echo"]
    assert other.run_sync("fake_echo", {"text": "hi"}).model_dump() == {"result": "hi"}


def test_lookup_miss_loads_plugins_lazily(
    monkeypatch: pytest.MonkeyPatch, make_module: Callable[[str], str], fresh_default_registry: ToolRegistry
) -> None:
    module = make_module(GOOD)
    _fake_entry_points(monkeypatch, {"good": module})
    assert module not in sys.modules and len(fresh_default_registry) == 0
    assert fresh_default_registry.get("fake_echo").name == "fake_echo"
    assert module in sys.modules


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The example plugin distribution installed by pip into a fresh target directory (with its dist-info)."""
    work = tmp_path_factory.mktemp("tool_plugin")
    source = work / "src"
    shutil.copytree(PLUGIN_SOURCE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    target = work / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), str(source)],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert list(target.glob("malot_tool_example-*.dist-info/entry_points.txt"))
    yield target
    sys.modules.pop("malot_tool_example.register", None)
    sys.modules.pop("malot_tool_example", None)


def test_installed_distribution_is_discovered(
    installed_plugin: Path, monkeypatch: pytest.MonkeyPatch, fresh_default_registry: ToolRegistry
) -> None:
    monkeypatch.syspath_prepend(str(installed_plugin))
    importlib.invalidate_caches()
    statuses = {s.name: s for s in load_plugins(allow=["example"])}
    example = statuses["example"]
    assert example.state == "loaded", example.error
    assert example.distribution == "malot-tool-example" and example.version == "0.0.1"
    assert example.tools == ("example_add", "example_sleep", "example_stats")
    assert fresh_default_registry.run_sync("example_add", {"a": 2, "b": 5}).model_dump() == {"result": 7}
    stats = fresh_default_registry.run_sync("example_stats", {"values": [1.0, 3.0]})  # heavy: in a process
    assert stats.model_dump()["mean"] == 2.0 and stats.model_dump()["pid"] != os.getpid()


def _malot(args: list[str], site: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)]), "MALOT_PLUGINS": "example"}
    return subprocess.run(
        [sys.executable, "-m", "malot", *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_cli_lists_shows_and_runs_an_installed_plugin(installed_plugin: Path, tmp_path: Path) -> None:
    listed = _malot(["tools", "list", "--json"], installed_plugin)
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    assert [t["name"] for t in data["tools"]] == ["example_add", "example_sleep", "example_stats"]
    assert {p["name"]: p["state"] for p in data["plugins"]}["example"] == "loaded"
    assert all(t["plugin"] == "example" and t["family"] == "example" for t in data["tools"])

    shown = _malot(["tools", "show", "example_add", "--json"], installed_plugin)
    assert shown.returncode == 0, shown.stderr
    info = json.loads(shown.stdout)
    assert info["input_schema"]["properties"]["a"]["description"] == "the first summand"

    args_file = tmp_path / "args.json"
    args_file.write_text('{"values": [2, 4, 9]}', encoding="utf-8")
    ran = _malot(["tools", "run", "example_stats", "--args", f"@{args_file}", "--json"], installed_plugin)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["mean"] == 5.0

    bad = _malot(["tools", "run", "example_add", "--args", '{"a": "x"}'], installed_plugin)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: invalid arguments for tool 'example_add'")
    unknown = _malot(["tools", "show", "example_ad"], installed_plugin)
    assert unknown.returncode == 2 and "did you mean example_add" in unknown.stderr
