"""Configuration errors name where the bad value came from; ``malot doctor`` reports a broken ``malot.toml``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from malot.cli.app import main
from malot.config import load_settings
from malot.errors import ConfigError


def test_an_environment_variable_is_named() -> None:
    with pytest.raises(ConfigError, match=r"from MALOT_LEAN__POOL_SIZE: config key 'lean.pool_size' = 0"):
        load_settings(env={"MALOT_LEAN__POOL_SIZE": "0"})
    with pytest.raises(ConfigError, match=r"from MALOT_BACKEND: config key 'llm.backend'"):
        load_settings(env={"MALOT_BACKEND": "tpu"})


def test_flags_and_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"from the command line: config key 'prover.samples'"):
        load_settings(env={}, overrides={"prover.samples": 0})
    config = tmp_path / "malot.toml"
    config.write_text("[lean]\npool_size = 0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"from {config}: config key 'lean.pool_size'"):
        load_settings(config, env={})


def test_doctor_reports_a_broken_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "malot.toml").write_text("[lean\npool_size = 3\n", encoding="utf-8")
    assert main(["prove", "theorem t : True := by"]) == 2  # other commands refuse it
    capsys.readouterr()
    assert main(["doctor", "--json"]) == 0
    checks = json.loads(capsys.readouterr().out)
    config = [c for c in checks if c["section"] == "config"]
    assert config[0]["status"] == "error" and "malot.toml is not valid TOML" in config[0]["detail"]
    assert any(c["section"] == "lean" for c in checks)  # the other checks still ran (on the defaults)
