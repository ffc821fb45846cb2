"""Fixtures for the LLM backend tests: the tiny offline models and one local vLLM CPU server per test run.

The server takes tens of seconds to boot, so when the session will use it, it is launched in the background as soon
as the first test of this folder runs, and the tests that need it wait for it (they run after the transformers and
in-process vLLM tests, which overlap with the boot).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from malot.llm.hf_backend import TransformersLLM
from malot.testing.tiny_models import build_tiny_models
from malot.testing.vllm_server import LocalVllmServer, ServerStartError

CACHE = Path(__file__).resolve().parent.parent / ".cache"
_NEEDS_SERVER = {"value": False}


@pytest.hookimpl(trylast=True)  # after -k/-m deselection
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Note whether any selected test uses the vLLM server, so it is only launched when needed."""
    _NEEDS_SERVER["value"] = any("vllm_server" in getattr(item, "fixturenames", ()) for item in items)


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
def hf_llama(tiny_llama: Path) -> TransformersLLM:
    """One loaded transformers backend on the tiny Llama, shared by the session (loading is synchronous)."""
    llm = TransformersLLM(tiny_llama)
    llm.load_blocking()
    return llm


@pytest.fixture(scope="package")
def _vllm_server_process(tiny_llama: Path) -> Iterator[LocalVllmServer]:
    """The server object; launched (not yet awaited) on first use, always stopped when the llm tests end."""
    server = LocalVllmServer(
        tiny_llama,
        served_name="tiny",
        log_path=CACHE / "vllm-server.log",
        # tool calling as with `vllm serve --enable-auto-tool-choice ...` (tests/llm/test_tool_calls.py)
        # (pythonic: required/named calls are constrained by the tools' JSON schemas, compact JSON without padding)
        extra_args=[
            "--enable-auto-tool-choice",
            "--tool-call-parser",
            "pythonic",
            "--structured-outputs-config",
            '{"backend": "xgrammar", "disable_any_whitespace": true}',
        ],
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _launch_vllm_server_early(request: pytest.FixtureRequest) -> None:
    """Launch the server in the background at the first test here if any selected test needs it."""
    if _NEEDS_SERVER["value"]:
        server: LocalVllmServer = request.getfixturevalue("_vllm_server_process")
        server.launch()


@pytest.fixture(scope="package")
def vllm_server(_vllm_server_process: LocalVllmServer) -> LocalVllmServer:
    """A real vLLM OpenAI-compatible server (CPU build) serving the tiny Llama as ``tiny``; killed at the end."""
    try:
        _vllm_server_process.wait_ready()
    except ServerStartError as exc:
        pytest.fail(f"could not start the local vLLM server: {exc}", pytrace=False)
    return _vllm_server_process
