"""LLM backends behind one interface: :class:`~malot.llm.base.LLM`.

``load_llm(spec)`` builds a backend from a model string or :class:`~malot.config.LLMSettings`:

* ``script:FILE`` - the scripted model (:class:`malot.llm.fake.ScriptedLLM`);
* ``http(s)://host:port/v1#name`` - an OpenAI-compatible server (``vllm serve``, SGLang, ...) over httpx; ``#name``
  is the served model name (omitted: the server's first model);
* anything else - a local folder or hub id run in-process by ``backend``: ``vllm`` (the vLLM async engine) or ``hf``
  (transformers); ``auto`` picks vLLM when it is installed and a CUDA GPU is visible, else transformers.

Backend modules import their heavy libraries lazily, so ``import malot.llm`` stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from malot.config import LLMSettings
from malot.errors import BackendUnavailableError, ConfigError
from malot.llm.base import (
    LLM,
    BaseLLM,
    Capabilities,
    ChatMessage,
    Completion,
    GenerationRequest,
    GenerationResult,
    InfillPrompt,
    LogitsProcessor,
    SamplingParams,
    ToolCall,
    check_requests,
    prompt_text,
)
from malot.llm.fake import ScriptedLLM

__all__ = [
    "LLM",
    "BaseLLM",
    "Capabilities",
    "ChatMessage",
    "Completion",
    "GenerationRequest",
    "GenerationResult",
    "InfillPrompt",
    "LogitsProcessor",
    "ModelSpec",
    "SamplingParams",
    "ScriptedLLM",
    "ToolCall",
    "check_requests",
    "load_llm",
    "parse_model_spec",
    "prompt_text",
]

BackendName = Literal["script", "openai", "vllm", "hf"]


class ModelSpec:
    """A parsed model string: which backend serves it and where the model is."""

    __slots__ = ("backend", "base_url", "model")

    def __init__(self, backend: BackendName, model: str | None, base_url: str | None = None) -> None:
        self.backend: BackendName = backend
        self.model = model
        self.base_url = base_url

    def __repr__(self) -> str:
        return f"ModelSpec(backend={self.backend!r}, model={self.model!r}, base_url={self.base_url!r})"


def parse_model_spec(model: str, backend: str = "auto") -> ModelSpec:
    """Split a model string into backend, model name and (for servers) base URL.

    ``backend`` is the configured choice (``auto``, ``vllm``, ``hf``, ``openai``, ``script``); an explicit scheme in
    the string (``script:``, ``http://``) wins over ``auto``.
    """
    if model.startswith("script:"):
        return ModelSpec("script", model[len("script:") :])
    if model.startswith(("http://", "https://")):
        url, _, name = model.partition("#")
        return ModelSpec("openai", name or None, url.rstrip("/"))
    if backend == "script":
        return ModelSpec("script", model)
    if backend == "openai":
        raise ConfigError(
            f"backend 'openai' needs a server URL, got model {model!r}",
            hint="write the model as http://host:port/v1#served-name",
        )
    if backend in ("vllm", "hf"):
        return ModelSpec(backend, model)  # type: ignore[arg-type]
    if backend != "auto":
        raise ConfigError(f"unknown LLM backend {backend!r}", hint="use auto, vllm, hf, openai or script")
    return ModelSpec(_auto_local_backend(), model)


def _auto_local_backend() -> BackendName:
    """vLLM when it is installed and a CUDA GPU is visible, else transformers."""
    import importlib.util

    if importlib.util.find_spec("vllm") is not None and importlib.util.find_spec("torch") is not None:
        import torch

        if torch.cuda.is_available():
            return "vllm"
    return "hf"


def load_llm(spec: str | LLMSettings, *, backend: str | None = None, **options: Any) -> LLM:
    """Build the backend a model string or :class:`LLMSettings` names (see the module docstring).

    ``options`` go to the backend's constructor (e.g. ``logits_processors=[...]`` for transformers, ``transport``
    for the OpenAI backend in tests). The backend is returned unopened; use it as ``async with load_llm(...) as llm``.
    """
    settings = spec if isinstance(spec, LLMSettings) else LLMSettings(model=spec)
    chosen = backend or settings.backend
    parsed = parse_model_spec(settings.model, chosen)
    if parsed.backend == "script":
        path = Path(parsed.model or "")
        return ScriptedLLM.from_file(path, **options)
    if parsed.backend == "openai":
        from malot.llm.openai_backend import OpenAICompatibleLLM

        assert parsed.base_url is not None
        server: LLM = OpenAICompatibleLLM.from_settings(parsed.base_url, parsed.model, settings, **options)
        return server
    if parsed.backend in ("hf", "vllm"):
        from malot.llm.hub import check_hub_model

        assert parsed.model is not None
        check_hub_model(parsed.model)  # not downloaded and offline, or gated without a login: say so now
    if parsed.backend == "hf":
        _require("torch", "transformers", extra="hf")
        from malot.llm.hf_backend import TransformersLLM

        assert parsed.model is not None
        local: LLM = TransformersLLM.from_settings(parsed.model, settings, **options)
        return local
    _require("vllm", extra="vllm")
    from malot.llm.vllm_backend import VllmLLM

    assert parsed.model is not None
    engine: LLM = VllmLLM.from_settings(parsed.model, settings, **options)
    return engine


def _require(*modules: str, extra: str) -> None:
    import importlib.util

    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise BackendUnavailableError(
                f"the {extra} backend needs the Python package {module!r}, which is not installed",
                hint=f"pip install 'malot[{extra}]'",
            )
