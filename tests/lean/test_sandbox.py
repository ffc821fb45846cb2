"""Sandbox commands: bubblewrap's read-only view, the user-namespace fallback, and what the doctor says."""

from __future__ import annotations

import subprocess

from malot.config import Settings
from malot.lean.doctor import checks
from malot.lean.sandbox import detect_sandbox, wrap_command


def test_bwrap_command_is_read_only_without_network() -> None:
    cmd = wrap_command(["lean", "--json", "/scratch/A.lean"], "bwrap", writable=["/scratch"], cwd="/proj")
    assert cmd[:5] == ["bwrap", "--ro-bind", "/", "/", "--dev"]
    assert cmd[cmd.index("--bind") : cmd.index("--bind") + 3] == ["--bind", "/scratch", "/scratch"]
    assert "--unshare-net" in cmd and "--die-with-parent" in cmd
    assert cmd[-4:] == ["--", "lean", "--json", "/scratch/A.lean"]
    assert wrap_command(["lean"], "off") == ["lean"]


def test_detected_sandbox_isolates_the_network_or_doctor_says_unsandboxed() -> None:
    kind = detect_sandbox()
    sandbox_line = next(c for c in checks(Settings()) if c.name == "sandbox")
    if kind == "off":
        assert "unsandboxed" in sandbox_line.detail
        return
    # inside the sandbox only the loopback interface exists
    out = subprocess.run(wrap_command(["cat", "/proc/net/dev"], kind), capture_output=True, text=True, check=True)
    interfaces = {line.split(":")[0].strip() for line in out.stdout.splitlines()[2:]}
    assert interfaces == {"lo"}
    assert "bubblewrap" in sandbox_line.detail or "NOT read-only" in sandbox_line.detail
    off = next(c for c in checks(Settings(lean={"sandbox": "off"})) if c.name == "sandbox")
    assert "unsandboxed" in off.detail
