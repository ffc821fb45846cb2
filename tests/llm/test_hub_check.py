"""An in-process model named by a hub id that cannot be loaded fails at once with one clear message: not
downloaded while offline, the hub unreachable, no such model, or gated without a login (the hub is faked here:
the tests never reach the network)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import huggingface_hub
import pytest
from huggingface_hub.errors import RepositoryNotFoundError

from malot.config import LLMSettings
from malot.errors import BackendUnavailableError, ConfigError
from malot.llm import load_llm
from malot.llm.hub import check_hub_model


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)


def _hub_answers(monkeypatch: pytest.MonkeyPatch, answer: Any) -> list[str]:
    asked: list[str] = []

    def model_info(self: Any, repo_id: str, **kwargs: Any) -> Any:
        asked.append(repo_id)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    return asked


def test_offline_and_not_downloaded_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    asked = _hub_answers(monkeypatch, AssertionError("the hub must not be asked offline"))
    with pytest.raises(BackendUnavailableError, match="is not downloaded, and the hub is offline") as caught:
        check_hub_model("deepseek-ai/DeepSeek-Prover-V1.5-RL", cache_dir=tmp_path)
    assert "huggingface-cli download deepseek-ai/DeepSeek-Prover-V1.5-RL" in (caught.value.hint or "")
    assert asked == []
    with pytest.raises(BackendUnavailableError, match="hub is offline"):  # through load_llm, before any backend
        load_llm(LLMSettings(model="some-org/never-downloaded", backend="hf"))


def test_a_downloaded_model_or_a_local_folder_passes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snapshot = tmp_path / "models--org--prover" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}", encoding="utf-8")
    (tmp_path / "models--org--prover" / "refs").mkdir()
    (tmp_path / "models--org--prover" / "refs" / "main").write_text("abc123", encoding="utf-8")
    check_hub_model("org/prover", cache_dir=tmp_path)
    folder = tmp_path / "my" / "model"
    folder.mkdir(parents=True)
    check_hub_model(str(folder))


def test_an_unreachable_hub_is_said_at_once(online: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _hub_answers(monkeypatch, OSError("[Errno -2] Name or service not known"))
    with pytest.raises(BackendUnavailableError, match=r"cannot reach the Hugging Face hub .*Name or service"):
        check_hub_model("org/prover", cache_dir=tmp_path)


def test_a_gated_model_needs_a_login(online: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _hub_answers(monkeypatch, SimpleNamespace(gated="manual"))
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with pytest.raises(BackendUnavailableError, match="is gated on the hub and no hub login") as caught:
        check_hub_model("RickyDeSkywalker/LoT-Solver", cache_dir=tmp_path)
    assert "huggingface-cli login" in (caught.value.hint or "")
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: "hf_token")
    check_hub_model("RickyDeSkywalker/LoT-Solver", cache_dir=tmp_path)  # logged in: the download may go ahead


def test_an_unknown_model_is_a_config_error(online: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    not_found = RepositoryNotFoundError.__new__(RepositoryNotFoundError)  # as the client raises it for a 404
    Exception.__init__(not_found, "404 Client Error: Repository Not Found")
    _hub_answers(monkeypatch, not_found)
    with pytest.raises(ConfigError, match="the hub has no model 'org/typo'"):
        check_hub_model("org/typo", cache_dir=tmp_path)
