"""Sandbox commands: bubblewrap's read-only view, the user-namespace fallback, and what the doctor says."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

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


def test_backend_choice_follows_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from malot.config import LeanSettings
    from malot.errors import BackendUnavailableError
    from malot.lean.select import choose_backend, load_verifier

    monkeypatch.delenv("MALOT_LEAN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    project = tmp_path / "proj"
    project.mkdir()
    (project / "lakefile.lean").write_text("import Lake\n")
    assert choose_backend(LeanSettings()).kind == "none"
    assert choose_backend(LeanSettings(project=project)).kind == "file"  # REPL not built: lake env lean
    assert choose_backend(LeanSettings(project=project, backend="repl")).kind == "none"
    repl = project / ".lake" / "packages" / "REPL" / ".lake" / "build" / "bin" / "repl"
    repl.parent.mkdir(parents=True)
    repl.write_text("")
    assert choose_backend(LeanSettings(project=project)).kind == "repl"
    assert choose_backend(LeanSettings(project=project, kimina_url="http://127.0.0.1:1")).kind == "kimina"
    with pytest.raises(BackendUnavailableError, match="lake"):
        load_verifier(LeanSettings(project=project))  # no lake on PATH here
