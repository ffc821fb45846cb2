"""Run Lean isolated where the OS allows: no network, and a read-only view of everything but its scratch folder.

Three levels, best first: ``bwrap`` (bubblewrap, Debian package ``bubblewrap``): read-only root, writable scratch,
no network, dies with its parent; ``unshare`` (util-linux, unprivileged user namespaces): no network only; and
none. ``malot doctor`` reports which one is in effect.
"""

from __future__ import annotations

import functools
import resource
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from malot.errors import BackendUnavailableError

__all__ = ["SandboxKind", "detect_sandbox", "limits_preexec", "resolve_sandbox", "wrap_command"]

SandboxKind = Literal["bwrap", "unshare", "off"]


@functools.cache
def _unshare_works() -> bool:
    exe = shutil.which("unshare")
    if exe is None:
        return False
    try:
        done = subprocess.run([exe, "-rn", "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def detect_sandbox() -> SandboxKind:
    """The best isolation available on this machine."""
    if shutil.which("bwrap"):
        return "bwrap"
    if _unshare_works():
        return "unshare"
    return "off"


def resolve_sandbox(setting: str) -> SandboxKind:
    """The sandbox for a ``[lean] sandbox`` setting (``auto``, ``off``, ``bwrap``); errors if bwrap is required."""
    if setting == "off":
        return "off"
    if setting == "bwrap":
        if not shutil.which("bwrap"):
            raise BackendUnavailableError(
                "sandbox = 'bwrap' but bubblewrap is not installed",
                hint="apt-get install bubblewrap, or set [lean] sandbox = 'auto'",
            )
        return "bwrap"
    return detect_sandbox()


def wrap_command(
    argv: Sequence[str], kind: SandboxKind, writable: Sequence[str | Path] = (), cwd: str | Path | None = None
) -> list[str]:
    """``argv`` run inside the sandbox ``kind``; ``writable`` folders stay writable under bwrap."""
    if kind == "off":
        return list(argv)
    if kind == "unshare":
        return ["unshare", "-rn", "--", *argv]
    cmd = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    for path in writable:
        cmd += ["--bind", str(path), str(path)]
    if cwd is not None:
        cmd += ["--chdir", str(cwd)]
    cmd += ["--unshare-net", "--unshare-ipc", "--die-with-parent", "--", *argv]
    return cmd


def limits_preexec(memory_limit_mb: int | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` that caps the child's address space (RLIMIT_AS), or None when there is no cap."""
    if memory_limit_mb is None:
        return None
    limit = int(memory_limit_mb) * 1024 * 1024

    def apply() -> None:  # runs in the child between fork and exec
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply
