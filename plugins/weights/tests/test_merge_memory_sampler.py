"""The merge-memory benchmark measures a whole process tree, not only its largest process (reads Linux ``/proc``)."""

from __future__ import annotations

import runpy
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "merge_memory.py"
MB = 1 << 20

# a parent that starts a child; each holds its own buffer until the release file appears
TREE_SCRIPT = """
import pathlib, subprocess, sys, time
release = pathlib.Path(sys.argv[1])
child = subprocess.Popen([sys.executable, "-c", (
    "import pathlib, sys, time\\n"
    "buf = b'x' * (160 * 2**20)\\n"
    "while not pathlib.Path(sys.argv[1]).exists(): time.sleep(0.01)\\n"
), str(release)])
buf = b'x' * (80 * 2**20)
while not release.exists():
    time.sleep(0.01)
child.wait()
"""

pytestmark = pytest.mark.slow  # real processes holding 240 MB


@pytest.fixture(scope="module")
def bench() -> dict[str, Any]:
    return runpy.run_path(str(BENCHMARK))


def test_sampler_sums_the_tree_while_both_processes_hold_memory(bench: dict[str, Any], tmp_path: Path) -> None:
    release = tmp_path / "release"
    proc = subprocess.Popen([sys.executable, "-c", TREE_SCRIPT, str(release)])
    try:
        with bench["TreeSampler"](proc.pid, 0.02) as sampler:
            deadline = time.monotonic() + 120
            # wait for the state, not a time: both buffers fully written (private pages) while both processes live;
            # RSS alone can pass 240 MB earlier, from the interpreters' shared pages, while a buffer is still filling
            while sampler.peak["uss"] < 240 * MB or sampler.max_processes < 2:
                assert time.monotonic() < deadline, f"never saw both buffers: {sampler.peak}"
                time.sleep(0.02)
            release.touch()
            proc.wait(timeout=120)
    finally:
        release.touch()
        proc.wait(timeout=120)
    assert sampler.peak["rss"] >= 240 * MB  # both buffers at once: more than the largest process alone
    assert sampler.peak["uss"] >= 240 * MB  # the buffers are private pages
    assert len(sampler.hwm) >= 2
    largest = max(sampler.hwm.values())
    assert sampler.peak["rss"] > largest


def test_run_measured_reports_tree_and_per_process_peaks(bench: dict[str, Any], tmp_path: Path) -> None:
    code = "import sys, time; b = b'x' * (64 * 2**20); time.sleep(0.2)"
    result = bench["run_measured"]([sys.executable, "-c", code], interval=0.02)
    assert result["returncode"] == 0
    assert result["largest_process_peak_rss_bytes"] >= 64 * MB  # wait4's ru_maxrss
    # the upper bound is at least the largest process and at least any sampled sum
    assert result["per_process_peak_sum_bytes"] >= result["largest_process_peak_rss_bytes"]
    assert result["per_process_peak_sum_bytes"] >= result["tree_peak_rss_bytes"]  # VmHWM >= RSS in every sample
