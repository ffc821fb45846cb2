"""Configuration: layering (defaults < TOML < env < flags) and errors that name the key and the allowed values."""

from __future__ import annotations

from pathlib import Path

import pytest

from malot.config import Settings, load_settings
from malot.errors import ConfigError


def test_defaults_without_file_or_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={})
    assert settings == Settings()
    assert settings.prover.temperature == 0.8 and settings.prover.top_p == 0.8
    assert settings.prover.samples == 4 and settings.prover.rounds == 2


def test_layers_apply_in_order(tmp_path: Path) -> None:
    cfg = tmp_path / "malot.toml"
    cfg.write_text('[lean]\npool_size = 3\ntimeout_s = 60\n[llm]\nmodel = "script:x.jsonl"\n')
    env = {"MALOT_LEAN__POOL_SIZE": "5", "MALOT_MODEL": "http://127.0.0.1:8000/v1#tiny", "UNRELATED": "1"}
    settings = load_settings(cfg, env=env, overrides={"lean.timeout_s": 12.5, "prover.samples": None})
    assert settings.lean.pool_size == 5  # env beats file
    assert settings.lean.timeout_s == 12.5  # flag beats file
    assert settings.llm.model == "http://127.0.0.1:8000/v1#tiny"
    assert settings.prover.samples == 4  # a None flag leaves lower layers alone


def test_env_lists_and_shortcuts(tmp_path: Path) -> None:
    env = {
        "MALOT_PLUGINS": "weights,fusion",
        "MALOT_LEAN": "/opt/lean/bin/lean",
        "MALOT_LEAN__PREWARM": '["import Mathlib"]',
    }
    settings = load_settings(env=env)
    assert settings.tools.plugins == ["weights", "fusion"]
    assert settings.lean.lean_path == Path("/opt/lean/bin/lean")
    assert settings.lean.prewarm == ["import Mathlib"]


def test_invalid_value_names_key_and_allowed_values(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[llm]\nbackend = "tpu"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, env={})
    message = str(info.value)
    assert "llm.backend" in message and "'tpu'" in message
    assert "'auto', 'vllm', 'hf', 'openai' or 'script'" in message
    assert str(cfg) in message


def test_unknown_key_suggests_close_match(tmp_path: Path) -> None:
    cfg = tmp_path / "typo.toml"
    cfg.write_text("[lean]\npool_sise = 3\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'lean.pool_sise'; did you mean pool_size"):
        load_settings(cfg, env={})


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    cfg = tmp_path / "broken.toml"
    cfg.write_text("[lean\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_settings(cfg, env={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml", env={})


def test_out_of_range_env_value() -> None:
    with pytest.raises(
        ConfigError, match=r"config key 'lean.pool_size' = 0: Input should be greater than or equal to 1"
    ):
        load_settings(env={"MALOT_LEAN__POOL_SIZE": "0"})


def test_toml_rendering_round_trips(tmp_path: Path) -> None:
    settings = load_settings(env={"MALOT_LEAN__PREWARM": '["import Mathlib"]'})
    path = tmp_path / "out.toml"
    path.write_text(settings.to_toml())
    assert load_settings(path, env={}) == settings
