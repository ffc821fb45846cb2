"""``benchmarks/search_overhead.py`` keeps its shape (a small run: 2 searches, 2 REPL processes, k = 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_search_overhead_writes_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "search.json"
    script = REPO / "benchmarks" / "search_overhead.py"
    args = ["--quick", "--searches", "2", "--processes", "2", "--k", "2", "--out", str(out)]
    subprocess.run([sys.executable, str(script), *args], check=True, capture_output=True, timeout=120)
    data = json.loads(out.read_text())
    assert {"expansions_per_second", "ideal_expansions_per_second", "search_efficiency", "details"} <= data.keys()
    [round_] = data["details"]["rounds"]
    assert round_["proved"] == 2 and round_["expansions"] == 8 and round_["tactic_calls"] == 16
    assert data["search_efficiency"] == pytest.approx(
        data["expansions_per_second"] / data["ideal_expansions_per_second"]
    )
