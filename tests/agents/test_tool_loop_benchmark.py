"""``benchmarks/tool_loop.py`` writes the figures issue 15 names (one short run; the figures are measured elsewhere)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_tool_loop_benchmark_writes_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "tool_loop.json"
    subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "tool_loop.py"), "--quick", "--seeds", "1", "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    data = json.loads(out.read_text())
    assert {"tool_calls_per_second", "direct_calls_per_second", "overhead_ms_per_call", "details"} <= data.keys()
    assert data["tool_calls_per_second"] > 0 and data["direct_calls_per_second"] > 0
    assert data["details"]["loops"] * data["details"]["calls_per_loop"] == data["details"]["runs"][0]["loop"]["calls"]
