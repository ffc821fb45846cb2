"""The CLI frame: help, version, config and doctor commands, and one-line errors with non-zero exits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from malot import __version__
from malot.cli.app import SUBCOMMANDS, main


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "malot", *args], capture_output=True, text=True, cwd=cwd, timeout=120, check=False
    )


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in out


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_every_subcommand_has_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([name, "--help"]) == 0
    assert "Usage: malot " + name in capsys.readouterr().out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_config_show_json_and_toml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[prover]\nsamples = 16\n")
    assert main(["--config", str(cfg), "config", "show", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["prover"]["samples"] == 16
    assert main(["--config", str(cfg), "config", "show", "--section", "prover"]) == 0
    assert "samples = 16" in capsys.readouterr().out


def test_config_init_and_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "malot.toml"
    assert main(["config", "init", str(target)]) == 0
    assert main(["config", "validate", str(target)]) == 0
    assert main(["config", "init", str(target)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_doctor_json_reports_core_sections(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--json"]) == 0
    checks = json.loads(capsys.readouterr().out)
    sections = {c["section"] for c in checks}
    assert {"python", "packages", "gpu", "lean toolchain"} <= sections
    assert all(c["status"] in ("ok", "warn", "missing", "error") for c in checks)
    assert not [c for c in checks if c["status"] == "error"], checks


def test_invalid_config_file_is_one_line_error(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[llm]\nbackend = "tpu"\n')
    proc = run("--config", str(cfg), "config", "show")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: invalid configuration")
    assert "Traceback" not in proc.stderr


def test_unknown_option_and_command_are_one_line_errors() -> None:
    proc = run("config", "show", "--bogus")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: No such option '--bogus'. (see 'malot config show --help')"
    proc = run("docter")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: no such command 'docter'; did you mean 'doctor'? (see 'malot --help')"


def test_malot_script_entry_point_runs() -> None:
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "malot"), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0 and "doctor" in proc.stdout
