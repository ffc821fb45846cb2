"""benchmarks/screen_speed.py keeps its shape: the figures it names, as finite numbers, plus details."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIGURES = {
    "screen_cpu_s_300kb",
    "screen_wall_s_300kb",
    "per_kb_growth",
    "screen_over_lex",
    "mixed_cpu_s_300kb",
    "demo_screen_ms",
}


def test_screen_speed_writes_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "screen.json"
    args = ["--kb", "20", "--seeds", "1", "--out", str(out)]
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "screen_speed.py"), *args], check=True, timeout=120)
    data = json.loads(out.read_text())
    assert set(data) == FIGURES | {"details"}
    assert all(isinstance(data[k], float) and math.isfinite(data[k]) and data[k] > 0 for k in FIGURES)
    assert data["details"]["demos"] >= 60 and len(data["details"]["runs"]) == 1
