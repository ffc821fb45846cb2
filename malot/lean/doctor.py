"""``malot doctor`` checks for Lean: which backend is in effect, the Lean project, the sandbox, lean4checker."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from malot.doctor import Check, Status, run_version
from malot.lean.sandbox import detect_sandbox
from malot.lean.select import choose_backend, repl_binary

if TYPE_CHECKING:
    from malot.config import LeanSettings, Settings

__all__ = ["checks", "default_project"]

SECTION = "lean"


def default_project() -> Path:
    """The ``lean_project/`` folder next to the malot package (in a source checkout)."""
    return Path(__file__).resolve().parents[2] / "lean_project"


def _project_checks(project: Path) -> list[Check]:
    name = f"project {project}"
    if not (project / "lakefile.lean").is_file() and not (project / "lakefile.toml").is_file():
        return [Check(SECTION, name, "missing", "no lakefile here", "point [lean] project at a Lake project")]
    toolchain = (project / "lean-toolchain").read_text().strip() if (project / "lean-toolchain").is_file() else "?"
    out = [Check(SECTION, name, "ok", f"Lake project, toolchain {toolchain}")]
    mathlib = project / ".lake" / "packages" / "mathlib"
    if not mathlib.is_dir():
        out.append(
            Check(
                SECTION,
                "Mathlib",
                "missing",
                "Mathlib not fetched",
                f"cd {project} && lake exe cache get (see lean_project/README.md)",
            )
        )
    elif not any((mathlib / ".lake" / "build" / "lib").glob("**/Mathlib.olean")):
        out.append(Check(SECTION, "Mathlib", "warn", "fetched but not built", f"cd {project} && lake exe cache get"))
    else:
        out.append(Check(SECTION, "Mathlib", "ok", "built (.olean files present)"))
    binary = repl_binary(project)
    if binary is None:
        out.append(Check(SECTION, "REPL", "missing", "not built", f"cd {project} && lake build repl"))
    else:
        out.append(Check(SECTION, "REPL", "ok", str(binary)))
    return out


def checks(settings: Settings) -> list[Check]:
    """The Lean lines of the doctor's report."""
    lean = settings.lean
    choice = choose_backend(lean)
    status: Status = "ok" if choice.kind != "none" else "missing"
    out = [
        Check(
            SECTION,
            "backend in effect",
            status,
            f"{choice.kind}: {choice.detail}",
            "set MALOT_LEAN, --lean, --project or --kimina (lean_project/README.md)",
        )
    ]
    if choice.kind == "file" and lean.project is None:
        from malot.lean.file_backend import find_lean

        try:
            exe = find_lean(lean.lean_path)
        except Exception as exc:  # reported, not raised: the doctor must finish
            out.append(Check(SECTION, "lean executable", "error", str(exc)))
        else:
            version = run_version([str(exe), "--version"]) or "no version output"
            out.append(Check(SECTION, "lean executable", "ok", f"{exe}: {version.strip()}"))
    project = lean.project.expanduser() if lean.project else default_project()
    out.extend(_project_checks(project))
    kind = detect_sandbox() if lean.sandbox != "off" else "off"
    if kind == "bwrap":
        out.append(Check(SECTION, "sandbox", "ok", "bubblewrap: read-only file system, no network"))
    elif kind == "unshare":
        out.append(
            Check(
                SECTION,
                "sandbox",
                "warn",
                "partly sandboxed: user namespace without network, file system NOT read-only",
                "apt-get install bubblewrap for a read-only sandbox",
            )
        )
    else:
        out.append(
            Check(
                SECTION,
                "sandbox",
                "warn",
                "Lean runs unsandboxed (no bubblewrap, no user namespaces)"
                + (" because [lean] sandbox = 'off'" if lean.sandbox == "off" else ""),
                "apt-get install bubblewrap",
            )
        )
    out.append(_final_check_line(lean, choice.kind))
    checker = shutil.which("lean4checker")
    out.append(
        Check(
            SECTION,
            "lean4checker",
            "ok" if checker else ("missing" if lean.lean4checker else "warn"),
            checker or "not installed (optional re-check of accepted proofs)",
            "build github.com/leanprover/lean4checker and put it on PATH",
        )
    )
    return out


def _final_check_line(lean: LeanSettings, backend: str) -> Check:
    """Whether the environment-level final check can run here, and with which Lean."""
    from malot.lean.final_check import FinalChecker

    if lean.final_check == "off":
        return Check(SECTION, "final check", "warn", "off: fast-loop verdicts only", "set [lean] final_check = 'auto'")
    try:
        checker = FinalChecker.from_settings(lean) if backend != "file" else None
    except Exception as exc:  # reported, not raised: the doctor must finish
        return Check(SECTION, "final check", "error", str(exc))
    if backend == "file":
        return Check(SECTION, "final check", "ok", "with the file backend's Lean, in its sandbox")
    if checker is None:
        status: Status = "missing" if lean.final_check == "require" else "warn"
        return Check(
            SECTION,
            "final check",
            status,
            "no local Lean: verdicts come from the fast loop only",
            "set --lean / --project so the final check can run (or final_check = 'require' to reject instead)",
        )
    return Check(SECTION, "final check", "ok", checker.describe())
