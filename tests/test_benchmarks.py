"""Benchmarks keep their shape: ``--out FILE`` writes one JSON object with the figures the issues name."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_core_overhead_benchmark_writes_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "core.json"
    subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "core_overhead.py"),
            "--attempts",
            "200",
            "--repeats",
            "1",
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    data = json.loads(out.read_text())
    assert {"steps_per_second", "baseline_steps_per_second", "overhead_us_per_step", "details"} <= data.keys()
    assert data["details"]["steps"] == 200 * 6
    assert data["steps_per_second"] > 0 and data["baseline_steps_per_second"] > 0
