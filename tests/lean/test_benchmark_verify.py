"""benchmarks/verify_throughput.py keeps its shape: exactly the three figures the issue names, plus details."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.lean
def test_verify_throughput_writes_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "verify.json"
    args = ["--files", "2", "--power", "4", "--checks", "60", "--out", str(out)]
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "verify_throughput.py"), *args], check=True, timeout=120)
    data = json.loads(out.read_text())
    assert set(data) == {"scaling_efficiency", "pool_checks_per_second", "pool_overhead_ms_per_check", "details"}
    assert 0 < data["scaling_efficiency"] <= 1
    assert data["pool_checks_per_second"] > 0 and data["pool_overhead_ms_per_check"] >= 0
    assert data["details"]["replay_pool"]["ok_checks"] == 60
