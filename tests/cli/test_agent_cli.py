"""``malot agent run`` (live progress, --json) and ``malot tools recommend`` from the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from malot.cli.app import main


def write_script(path: Path, *lines: object) -> Path:
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    return path


def test_agent_run_shows_each_call_and_prints_the_answer(tmp_path: Path) -> None:
    script = write_script(
        tmp_path / "s.jsonl",
        {"tool_calls": [{"name": "recommend_tools", "arguments": {"query": "merge two checkpoints", "k": 2}}]},
        {"tool_calls": [{"name": "recommend_tools", "arguments": {"k": 2}}]},
        "use fisher_merge",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "malot", "agent", "run", "--model", f"script:{script}", "--tools", "recommend_tools",
         "which tool merges checkpoints?"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "use fisher_merge"
    assert "→ recommend_tools" in proc.stderr and "✓ recommend_tools" in proc.stderr
    assert "✗ recommend_tools" in proc.stderr and "missing required argument 'query'" in proc.stderr


def test_agent_run_json_and_max_steps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    call = {"tool_calls": [{"name": "recommend_tools", "arguments": {"query": "merge"}}]}
    script = write_script(tmp_path / "s.jsonl", call, call, call)
    code = main(["agent", "run", "--model", f"script:{script}", "--tools", "recommend_tools", "--max-steps", "2",
                 "--json", "loop"])  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    assert code == 1 and data["status"] == "max_steps" and data["turns"] == 2
    assert [c["tool"] for c in data["tool_calls"]] == ["recommend_tools"] and data["usage"]["samples"] == 2


def test_agent_run_unknown_tool_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = write_script(tmp_path / "s.jsonl", "x")
    assert main(["agent", "run", "--model", f"script:{script}", "--tools", "no_such_tool", "task"]) == 2
    assert "no_such_tool" in capsys.readouterr().err


def test_tools_recommend_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tools", "recommend", "merge two fine-tuned checkpoints", "-k", "2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["recommendations"][0]["name"] == "fisher_merge"
    assert data["recommendations"][0]["entry_point"].startswith("weights = ")


def test_agent_run_uses_the_mcp_servers_of_the_config(tmp_path: Path) -> None:
    server = Path(__file__).resolve().parents[1] / "server" / "mcp_fixture_server.py"
    config = tmp_path / "malot.toml"
    config.write_text(
        f"[tools.mcp.fixture]\ncommand = [{json.dumps(sys.executable)}, {json.dumps(str(server))}]\n"
        '[tools.mcp.broken]\ncommand = ["/nonexistent/mcp-server"]\n',
        encoding="utf-8",
    )
    script = write_script(
        tmp_path / "s.jsonl", {"tool_calls": [{"name": "shout", "arguments": {"text": "qed"}}]}, "QED it is"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "malot", "--config", str(config), "agent", "run", "--model", f"script:{script}",
         "--json", "shout"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["answer"] == "QED it is"
    (record,) = data["tool_calls"]
    assert record["tool"] == "shout" and record["source"] == "fixture" and record["error"] is None
    assert "MCP server 'broken'" in data["unavailable"]["broken"]
