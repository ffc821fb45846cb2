"""MCP both ways with the official SDK: its client against ``malot mcp`` (stdio), and ToolAgent using MCP servers."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from malot.agents import ToolAgent
from malot.config import McpServerSettings
from malot.llm import ScriptedLLM
from malot.tools import RegistrySource
from malot.tools.mcp_client import McpToolSource
from tests.agents import tool_fixtures

SUITE = Path(__file__).resolve().parents[1] / "data" / "prelude_suite" / "prelude_suite.jsonl"
FIXTURE_SERVER = Path(__file__).resolve().parent / "mcp_fixture_server.py"


def suite_record(name: str) -> dict[str, str]:
    for line in SUITE.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record["name"] == name:
            return dict(record)
    raise KeyError(name)


def structured(result: Any) -> Any:
    assert not result.is_error, result.content
    return result.structured_content


@pytest.mark.lean
@pytest.mark.slow
async def test_sdk_client_round_trip_against_malot_mcp_stdio(lean_exe: Path, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    env = {
        **os.environ,
        "MALOT_LEAN__LEAN_PATH": str(lean_exe),
        "MALOT_LEAN__BACKEND": "file",
        "MALOT_LEAN__SANDBOX": "off",
    }
    record = suite_record("zero_eq_zero")
    good = f"{record['header']}{record['statement']}\n  {record['proof']}\n"
    bad = f"{record['header']}{record['statement']}\n  {record['wrong_proof']}\n"
    a, b, merged = tmp_path / "a.safetensors", tmp_path / "b.safetensors", tmp_path / "merged.safetensors"
    save_file({"w": torch.ones(2, 2)}, str(a))
    save_file({"w": torch.full((2, 2), 3.0)}, str(b))
    server = StdioServerParameters(command=sys.executable, args=["-m", "malot", "mcp"], env=env)
    async with Client(server, read_timeout_seconds=120) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"verify", "prove", "lean_check", "retrieve_demos", "recommend_tools", "fisher_merge"} <= names
        accepted = structured(await client.call_tool("verify", {"code": good}))
        assert accepted["accepted"] is True and accepted["no_errors"] is True
        rejected = structured(await client.call_tool("verify", {"code": bad}))
        assert rejected["accepted"] is False and rejected["reasons"]
        out = structured(await client.call_tool("fisher_merge", {"models": [str(a), str(b)], "output": str(merged)}))
        assert out["tensors_merged"] == 1
        invalid = await client.call_tool("fisher_merge", {"models": []})
        assert invalid.is_error and "output" in invalid.content[0].text
    assert torch.allclose(load_file(str(merged))["w"], torch.full((2, 2), 2.0))


def fixture_server(**options: Any) -> McpServerSettings:
    return McpServerSettings(command=[sys.executable, str(FIXTURE_SERVER)], **options)


def turn(*calls: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {"text": "", "tool_calls": [{"name": n, "arguments": a} for n, a in calls]}


@pytest.mark.slow
async def test_tool_agent_uses_an_mcp_server_and_survives_it_hanging_and_dying() -> None:
    llm = ScriptedLLM(
        [
            turn(("shout", {"text": "lean"})),
            turn(("hang", {})),
            turn(("die", {})),
            turn(("shout", {"text": "again"}), ("add", {"a": 1, "b": 2})),
            "done",
        ]
    )
    local = RegistrySource(tool_fixtures.REGISTRY, names=["add"], name="local")
    async with McpToolSource("fixture", fixture_server(call_timeout_s=2.0)) as remote:
        result = await ToolAgent(llm, [remote, local], max_steps=6).run("use the tools")
    assert result.answered and result.answer == "done"
    shout, hang, die, shout_again, add = result.tool_calls
    assert shout.error is None and shout.source == "fixture"
    assert llm.requests[1].prompt[-1].content == "LEAN"  # type: ignore[union-attr]
    assert hang.error_kind == "timeout" and "'fixture'" in (hang.error or "")
    assert die.error_kind == "unavailable" and "'fixture'" in (die.error or "")
    assert shout_again.error_kind == "unavailable"  # the server is gone; the agent goes on with its other tools
    assert add.error is None


@pytest.mark.slow
async def test_a_server_that_cannot_start_is_left_out_with_a_clear_message() -> None:
    broken = McpServerSettings(command=[sys.executable, "-c", "import sys; sys.exit(3)"], startup_timeout_s=20)
    llm = ScriptedLLM([turn(("add", {"a": 2, "b": 2})), "4"])
    local = RegistrySource(tool_fixtures.REGISTRY, names=["add"], name="local")
    async with McpToolSource("broken", broken) as dead:
        result = await ToolAgent(llm, [dead, local]).run("add")
    assert result.answered and result.tool_calls[0].error is None
    assert "MCP server 'broken'" in result.unavailable["broken"]
    assert [t["function"]["name"] for t in llm.requests[0].tools] == ["add"]


@pytest.mark.slow
async def test_malot_mcp_serves_streamable_http(tmp_path: Path) -> None:
    import asyncio
    import socket
    import subprocess

    from malot.testing.vllm_server import free_port

    port = free_port()
    log_path = tmp_path / "mcp.log"
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "malot", "mcp", "--transport", "http", "--port", str(port),
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        async with asyncio.timeout(120):  # waits until the server listens, not for a fixed time
            while True:
                assert proc.returncode is None, log_path.read_bytes().decode(errors="replace")
                with socket.socket() as probe:
                    if probe.connect_ex(("127.0.0.1", port)) == 0:
                        break
                await asyncio.sleep(0.2)
        async with Client(f"http://127.0.0.1:{port}/mcp") as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert {"verify", "prove", "recommend_tools"} <= names
            out = structured(await client.call_tool("recommend_tools", {"query": "merge checkpoints", "k": 1}))
            assert out["result"][0]["name"] == "fisher_merge"
    finally:
        proc.terminate()
        await proc.wait()
