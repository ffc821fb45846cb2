"""Choosing Lean: from ``[lean]`` settings (config file, ``MALOT_LEAN`` / ``MALOT_PROJECT`` / ``MALOT_KIMINA``, flags).

Order for ``backend = "auto"``: a Kimina URL wins (the user set up a server); else a Lake project whose REPL is
built gives the REPL pool; else a project without a built REPL gives ``lake env lean``; else a ``lean``
executable (``lean_path``, ``$MALOT_LEAN``, PATH) gives the file backend.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from malot.errors import BackendUnavailableError

if TYPE_CHECKING:
    from malot.config import LeanSettings
    from malot.lean.base import Verifier

__all__ = ["BackendChoice", "choose_backend", "describe_choice", "load_verifier", "repl_binary"]


@dataclass(frozen=True, slots=True)
class BackendChoice:
    """Which backend the settings select and why (shown by ``malot doctor`` and ``malot verify``)."""

    kind: str  # "kimina", "repl", "file", "none"
    detail: str


def repl_binary(project: Path) -> Path | None:
    """The built REPL executable of a Lake project (``lake build repl``), if present."""
    for candidate in (
        project / ".lake" / "packages" / "REPL" / ".lake" / "build" / "bin" / "repl",
        project / ".lake" / "packages" / "repl" / ".lake" / "build" / "bin" / "repl",
        project / ".lake" / "build" / "bin" / "repl",
    ):
        if candidate.is_file():
            return candidate
    return None


def choose_backend(settings: LeanSettings) -> BackendChoice:
    """The backend ``settings`` select, without starting anything."""
    kind = settings.backend
    if kind == "kimina" or (kind == "auto" and settings.kimina_url):
        if not settings.kimina_url:
            return BackendChoice("none", "backend = 'kimina' but no kimina_url / MALOT_KIMINA / --kimina URL")
        return BackendChoice("kimina", f"Kimina Lean Server at {settings.kimina_url}")
    project = settings.project.expanduser() if settings.project else None
    if kind == "repl" or (kind == "auto" and project is not None):
        if project is None:
            return BackendChoice("none", "backend = 'repl' needs a Lake project (project / MALOT_PROJECT / --project)")
        binary = repl_binary(project)
        if binary is not None:
            return BackendChoice("repl", f"REPL pool: {binary} in {project}")
        if kind == "repl":
            return BackendChoice("none", f"the REPL in {project} is not built (cd {project} && lake build repl)")
        return BackendChoice("file", f"lake env lean in {project} (REPL not built)")
    lean = settings.lean_path or os.environ.get("MALOT_LEAN") or shutil.which("lean")
    if lean:
        return BackendChoice("file", f"lean --json with {lean}")
    return BackendChoice("none", "no Lean found: set MALOT_LEAN, --lean, --project or --kimina")


def describe_choice(settings: LeanSettings) -> str:
    """One line: the backend in effect and where its Lean comes from."""
    choice = choose_backend(settings)
    return f"{choice.kind}: {choice.detail}"


def load_verifier(settings: LeanSettings, *, workers: int | None = None) -> Verifier:
    """Build the :class:`~malot.lean.base.Verifier` the settings select (not started: use ``async with``)."""
    choice = choose_backend(settings)
    if choice.kind == "none":
        raise BackendUnavailableError(choice.detail, hint="see 'malot doctor' and lean_project/README.md")
    from malot.lean.final_check import FinalChecker

    if choice.kind == "kimina":
        from malot.lean.kimina import KiminaVerifier

        assert settings.kimina_url is not None
        kimina = KiminaVerifier(settings.kimina_url, timeout=settings.timeout_s)
        kimina.final_checker = FinalChecker.from_settings(settings)  # a local Lean, where one is configured
        return kimina
    if choice.kind == "repl":
        from malot.lean.repl.pool import ReplPool

        pool = ReplPool.from_settings(settings, size=workers)
        pool.final_checker = FinalChecker.from_settings(settings)
        return pool
    from malot.lean.file_backend import LeanFileVerifier

    return LeanFileVerifier(
        settings.lean_path,
        project=settings.project,
        workers=workers or settings.pool_size,
        timeout=settings.timeout_s,
        memory_limit_mb=settings.memory_limit_mb,
        sandbox=settings.sandbox,
        final_check=settings.final_check,
        require_sandbox=settings.require_sandbox,
        lean4checker=settings.lean4checker,
    )
