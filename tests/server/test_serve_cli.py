"""``malot serve`` start-up failures as a user meets them (real subprocesses): one clear line, exit 2."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _serve(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.json"
    script.write_text('["  trivial"]')
    config = tmp_path / "malot.toml"
    config.write_text('[retrieval]\nretriever = "none"\nk = 0\n[lean]\nsandbox = "off"\n')
    argv = [sys.executable, "-m", "malot", "--config", str(config), "serve", "--host", "127.0.0.1"]
    argv += ["--model", f"script:{script}", "--store", str(tmp_path / "jobs.sqlite"), *args]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)


def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr + done.stdout and "ERROR" not in done.stderr
    return lines[0]


def test_a_taken_port_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = _one_error_line(_serve(tmp_path, "--port", str(port)))
    assert f"port {port} on 127.0.0.1 is already in use" in line and "--port" in line


def test_a_bad_lean_path_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a free port, so only --lean can fail
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    line = _one_error_line(_serve(tmp_path, "--port", str(port), "--lean", str(tmp_path / "no-such-lean")))
    assert "malot serve could not start" in line and "no-such-lean" in line
