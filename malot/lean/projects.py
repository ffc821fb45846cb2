"""One pinned Lean project per dataset version: MiniF2F in ``lean_project/`` (Lean/Mathlib v4.24.0), PutnamBench in
``lean_projects/putnambench/`` (v4.27.0).

Datasets declare the toolchain they were formalised against (:attr:`malot.eval.datasets.Dataset.toolchain`);
:func:`project_for_dataset` picks the pinned project for it, and refuses a configured project (``--project``,
``[lean] project``) or ``lean`` executable (``--lean``) of another version with one clear error, so a problem is
never checked against the wrong Mathlib (``[lean] toolchain_check = false`` turns the refusal off, at the user's
risk). ``scripts/setup.sh`` sets up every pinned project; ``malot doctor`` shows
them (:func:`checks`).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from malot.errors import ConfigError

if TYPE_CHECKING:
    from malot.config import Settings
    from malot.doctor import Check

__all__ = ["PINNED_PROJECTS", "PinnedProject", "checks", "project_for_dataset", "project_toolchain", "repo_root"]


@dataclass(frozen=True, slots=True)
class PinnedProject:
    """A dataset's pinned Lake project: the toolchain (``leanprover/lean4:vX``) and its folder in the checkout."""

    dataset: str
    toolchain: str
    folder: str

    @property
    def version(self) -> str:
        """The Lean version, e.g. ``4.27.0``."""
        return _version(self.toolchain) or self.toolchain

    def path(self, root: Path | None = None) -> Path:
        """The project folder under ``root`` (default: the source checkout malot runs from)."""
        return (root or repo_root()) / self.folder


#: Dataset family -> its pinned project.
PINNED_PROJECTS: dict[str, PinnedProject] = {
    "minif2f": PinnedProject("minif2f", "leanprover/lean4:v4.24.0", "lean_project"),
    "putnambench": PinnedProject("putnambench", "leanprover/lean4:v4.27.0", "lean_projects/putnambench"),
}

_VERSION = re.compile(r"v?(\d+\.\d+\.\d+(?:-rc\d+)?)")


def _version(text: str) -> str | None:
    match = _VERSION.search(text)
    return match.group(1) if match else None


def repo_root() -> Path:
    """The folder holding ``lean_project/`` and ``lean_projects/`` (the source checkout malot is installed from)."""
    return Path(__file__).resolve().parents[2]


def project_toolchain(project: Path) -> str | None:
    """The toolchain a Lake project pins (its ``lean-toolchain`` file), or ``None`` without one."""
    file = project.expanduser() / "lean-toolchain"
    return file.read_text(encoding="utf-8").strip() if file.is_file() else None


def _lean_version(lean: Path) -> str | None:
    try:
        out = subprocess.run([str(lean), "--version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return _version(out.stdout) if out.returncode == 0 else None


def project_for_dataset(dataset: str, toolchain: str | None, settings: Settings) -> Path | None:
    """The Lean project to check ``dataset`` in (``None``: keep the settings as they are).

    A dataset without a declared toolchain (a user's file) is checked as configured. Otherwise a configured
    project or ``lean`` executable must match the dataset's Lean version (else :class:`ConfigError`); with neither
    configured, the dataset's pinned project is used when it exists. A Kimina server's version cannot be read
    here, so it is the user's responsibility (the run records the dataset's toolchain).
    """
    if toolchain is None or not settings.lean.toolchain_check:
        return None
    want = _version(toolchain)
    lean = settings.lean
    if lean.project is not None:
        have = project_toolchain(lean.project)
        if have is not None and _version(have) != want:
            raise ConfigError(
                f"dataset {dataset} is pinned to {toolchain} but the Lean project {lean.project} pins {have}",
                hint=f"drop --project to use the pinned project, or point it at a {toolchain} project",
            )
        return None
    if lean.lean_path is not None and lean.backend in ("auto", "file"):
        have_version = _lean_version(lean.lean_path)
        if have_version is not None and have_version != want:
            raise ConfigError(
                f"dataset {dataset} is pinned to {toolchain} but {lean.lean_path} is Lean {have_version}",
                hint=f"use the pinned project (bash scripts/setup.sh) or a Lean {want} executable",
            )
        return None
    if lean.kimina_url is not None or lean.backend == "kimina":
        return None
    pinned = next((p for p in PINNED_PROJECTS.values() if _version(p.toolchain) == want), None)
    if pinned is None:
        raise ConfigError(
            f"dataset {dataset} needs Lean {toolchain} and malot has no pinned project for it",
            hint="pass --project with a Lake project pinned to that toolchain",
        )
    path = pinned.path()
    return path if (path / "lakefile.lean").is_file() else None


def checks(settings: Settings) -> list[Check]:
    """``malot doctor``: every pinned dataset project, its toolchain, and whether Mathlib and the REPL are built."""
    from malot.doctor import Check

    out = []
    for pinned in PINNED_PROJECTS.values():
        path = pinned.path()
        name = f"{pinned.dataset} project"
        if not (path / "lakefile.lean").is_file():
            out.append(Check("datasets", name, "missing", f"{path} not found", "run malot from a source checkout"))
            continue
        have = project_toolchain(path)
        if have != pinned.toolchain:
            out.append(Check("datasets", name, "error", f"{path} pins {have}, expected {pinned.toolchain}"))
            continue
        built = (path / ".lake" / "packages" / "mathlib" / ".lake" / "build").is_dir()
        if built:
            out.append(Check("datasets", name, "ok", f"{path}: {pinned.toolchain}, Mathlib built"))
        else:
            out.append(
                Check(
                    "datasets",
                    name,
                    "warn",
                    f"{path}: {pinned.toolchain}, Mathlib not set up",
                    f"bash scripts/setup.sh (or: cd {path} && lake exe cache get && lake build repl)",
                )
            )
    return out
