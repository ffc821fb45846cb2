"""Fixtures for the LLM backend tests: the tiny offline models and one local vLLM CPU server per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from malot.testing.tiny_models import build_tiny_models
from malot.testing.vllm_server import LocalVllmServer, ServerStartError

CACHE = Path(__file__).resolve().parent.parent / ".cache"


@pytest.fixture(scope="session")
def tiny_models() -> dict[str, Path]:
    """The tiny Llama and CodeGen models (built offline once, reused from tests/.cache when complete)."""
    return build_tiny_models(CACHE / "tiny-models")


@pytest.fixture(scope="session")
def tiny_llama(tiny_models: dict[str, Path]) -> Path:
    """The tiny Llama-architecture model folder."""
    return tiny_models["llama"]


@pytest.fixture(scope="session")
def tiny_codegen(tiny_models: dict[str, Path]) -> Path:
    """The tiny CodeGen model folder."""
    return tiny_models["codegen"]


@pytest.fixture(scope="session")
def vllm_server(tiny_llama: Path) -> Iterator[LocalVllmServer]:
    """A real vLLM OpenAI-compatible server (CPU build) serving the tiny Llama as ``tiny``; killed at the end."""
    server = LocalVllmServer(tiny_llama, served_name="tiny", log_path=CACHE / "vllm-server.log")
    try:
        server.start()
    except ServerStartError as exc:
        pytest.fail(f"could not start the local vLLM server: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()
