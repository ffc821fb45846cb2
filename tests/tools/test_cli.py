"""``malot tools`` text output, argument files and errors, in-process with a faked entry point."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from malot.cli.app import main
from malot.tools import ToolRegistry

TOOLS = """
    from pydantic import BaseModel

    from malot.tools import tool


    class Area(BaseModel):
        area: float


    @tool(family="geometry", paper="Euclid, Elements", tags=["demo"])
    def rectangle_area(width: float, height: float = 1.0) -> Area:
        \"\"\"Area of a rectangle.

        Args:
            width: the width
            height: the height
        \"\"\"
        return Area(area=width * height)
"""


@pytest.fixture
def cli_plugin(
    monkeypatch: pytest.MonkeyPatch, make_module: Callable[[str], str], fresh_default_registry: ToolRegistry
) -> ToolRegistry:
    module = make_module(TOOLS)
    eps = importlib.metadata.EntryPoints([importlib.metadata.EntryPoint(name="geo", value=module, group="malot.tools")])
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **_: eps)
    return fresh_default_registry


def test_list_show_run_text_and_json(cli_plugin: ToolRegistry, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tools", "list"]) == 0
    out = capsys.readouterr().out
    assert "rectangle_area" in out and "geometry" in out and "geo" in out
    assert main(["tools", "show", "rectangle_area"]) == 0
    out = capsys.readouterr().out
    assert "Euclid, Elements" in out and "width" in out and "the height" in out
    assert main(["tools", "show", "rectangle_area", "--openai"]) == 0
    assert json.loads(capsys.readouterr().out)["function"]["name"] == "rectangle_area"
    assert main(["tools", "run", "rectangle_area", "--args", '{"width": 2, "height": 3}', "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"area": 6.0}
    assert main(["tools", "run", "rectangle_area", "--args", '{"width": 2}', "--isolation", "inline"]) == 0
    assert '"area": 2.0' in capsys.readouterr().out


def test_run_errors(cli_plugin: ToolRegistry, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["tools", "run", "rectangle_area", "--args", "[1]"]) == 2
    assert "must be a JSON object" in capsys.readouterr().err
    assert main(["tools", "run", "rectangle_area", "--args", "{oops"]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert main(["tools", "run", "rectangle_area", "--args", f"@{tmp_path / 'none.json'}"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["tools", "run", "nope"]) == 2
    assert "no tool named 'nope'" in capsys.readouterr().err


def test_importing_malot_tools_stays_light() -> None:
    code = (
        "import sys, malot.tools, malot.cli.tools; "
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
