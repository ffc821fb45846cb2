"""benchmarks/verify_throughput.py keeps its shape: the figures issues 13 and 14 name (raw, unclamped), plus details."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIGURES = {
    "scaling_efficiency",
    "pool_checks_per_second",
    "pool_overhead_ms_per_check",
    "final_check_ms_per_proof",
    "final_check_share",
}


@pytest.mark.lean
def test_verify_throughput_writes_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "verify.json"
    args = ["--files", "2", "--power", "4", "--checks", "60", "--problems", "3", "--seeds", "2", "--out", str(out)]
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "verify_throughput.py"), *args], check=True, timeout=240)
    data = json.loads(out.read_text())
    assert set(data) == FIGURES | {"details"}
    assert all(isinstance(data[k], float) and math.isfinite(data[k]) for k in FIGURES)
    # the headline is the raw mean of the repeats (no clamping), and the spread is reported beside it
    for key in FIGURES:
        spread = data["details"]["spread"][key]
        assert spread["n"] == 2 and spread["min"] <= data[key] <= spread["max"]
        assert data[key] == pytest.approx(sum(r[key] for r in data["details"]["repeats"]) / 2)
    assert data["scaling_efficiency"] > 0 and data["pool_checks_per_second"] > 0
    assert data["final_check_ms_per_proof"] > 0 and data["final_check_share"] > 0
    assert all(r["replay_pool"]["ok_checks"] == 60 for r in data["details"]["repeats"])
