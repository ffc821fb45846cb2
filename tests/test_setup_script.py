"""``scripts/setup.sh``'s control flow, offline and without a GPU: it says there is no GPU (CPU path), reports each
failed step with what to do, still runs ``malot doctor``, skips the proof and exits 1.

The pip installs are skipped (``MALOT_SETUP_SKIP_INSTALL=1``: the malot of this venv is used); ``curl`` is a stand-in
that fails as it does offline, and ``nvidia-smi`` a stand-in that fails (no driver) or lists a GPU. ``HOME`` is
a fresh folder, so no elan or lake is found.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "setup.sh"


def _stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    path.chmod(0o755)


def _run_setup(tmp_path: Path, *, gpu: bool) -> subprocess.CompletedProcess[str]:
    stubs = tmp_path / "bin"
    stubs.mkdir()
    _stub(stubs, "curl", 'echo "curl: (6) Could not resolve host: raw.githubusercontent.com" >&2\nexit 6')
    if gpu:
        _stub(stubs, "nvidia-smi", 'echo "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0)"')
    else:  # as on a machine without the driver (shadows a real nvidia-smi, so the test runs anywhere)
        _stub(
            stubs,
            "nvidia-smi",
            'echo "NVIDIA-SMI has failed because it could not communicate with the driver" >&2\nexit 9',
        )
    home = tmp_path / "home"
    home.mkdir()
    system_path = ":".join(p for p in os.environ["PATH"].split(":") if ".elan" not in p)
    env = {
        **os.environ,
        "PATH": f"{stubs}:{system_path}",
        "HOME": str(home),
        "MALOT_VENV": sys.prefix,
        "MALOT_SETUP_SKIP_INSTALL": "1",
    }
    return subprocess.run(
        ["bash", str(SCRIPT)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=False
    )


@pytest.mark.slow
def test_offline_without_a_gpu_reports_each_failure_and_still_runs_doctor(tmp_path: Path) -> None:
    proc = _run_setup(tmp_path, gpu=False)
    out, err = proc.stdout, proc.stderr
    assert proc.returncode == 1, out + err
    assert "no NVIDIA GPU found" in out and "installing the CPU path" in out and ".[hf,retrieval,serve,plot,mcp]" in out
    assert "!! failed: downloading the elan installer" in err and "what to do: check the network" in err
    assert "Could not resolve host" in err  # curl's own message is shown too
    assert "malot doctor" in out  # doctor ran (its table's title) after the failed steps
    assert "!! skipping 'malot prove --project lean_project" in err and "Lean project (no lake)" in err
    assert out.index("== 5/5") < out.index("malot doctor")


@pytest.mark.slow
def test_with_a_gpu_the_vllm_stack_is_chosen(tmp_path: Path) -> None:
    proc = _run_setup(tmp_path, gpu=True)
    assert "NVIDIA GPU found:\n  GPU 0: NVIDIA H100" in proc.stdout
    assert ".[vllm,hf,retrieval,serve,plot,mcp]" in proc.stdout and proc.returncode == 1
