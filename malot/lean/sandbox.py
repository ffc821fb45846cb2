"""Run Lean isolated where the OS allows: no network, and a read-only view of everything but its scratch folder.

A candidate proof is untrusted code that Lean runs at elaboration time, and a source screen can be bypassed, so
isolation is the defence. Three levels, best first: ``bwrap`` (bubblewrap, Debian package ``bubblewrap``):
read-only view of the whole file system (the toolchain stays visible wherever it lives, ``/tmp`` included), one
writable scratch folder, no network, no shared IPC, dies with its parent; ``unshare`` (util-linux, unprivileged user
namespaces): no network only; and ``off``. Each level is *test-run* before it is chosen (a ``bwrap`` on PATH that
cannot create namespaces, as in some containers, is not used). Every verdict says which level was in effect, and
``[lean] require_sandbox = true`` refuses to run Lean without one.
"""

from __future__ import annotations

import functools
import logging
import resource
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from malot.errors import BackendUnavailableError

__all__ = ["SandboxKind", "detect_sandbox", "limits_preexec", "resolve_sandbox", "wrap_command"]

SandboxKind = Literal["bwrap", "unshare", "off"]

_log = logging.getLogger(__name__)


def _runs(argv: Sequence[str]) -> bool:
    try:
        done = subprocess.run(list(argv), capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


@functools.cache
def _unshare_works() -> bool:
    exe = shutil.which("unshare")
    return exe is not None and _runs([exe, "-rn", "true"])


@functools.cache
def _bwrap_works() -> bool:
    """bubblewrap is installed *and* can build its sandbox here (test-run with the options Lean runs under)."""
    exe = shutil.which("bwrap")
    return exe is not None and _runs(wrap_command(["true"], "bwrap", writable=[], cwd="/"))


def detect_sandbox() -> SandboxKind:
    """The best isolation that test-runs on this machine."""
    if _bwrap_works():
        return "bwrap"
    if _unshare_works():
        return "unshare"
    return "off"


def resolve_sandbox(setting: str, *, require: bool = False) -> SandboxKind:
    """The sandbox for a ``[lean] sandbox`` setting (``auto``, ``off``, ``bwrap``, ``unshare``).

    An explicitly named level that does not test-run is an error; ``auto`` takes the best that does and warns when
    none does (``require=True`` makes that an error instead).
    """
    if setting == "off":
        kind: SandboxKind = "off"
    elif setting == "bwrap":
        if not _bwrap_works():
            raise BackendUnavailableError(
                "sandbox = 'bwrap' but bubblewrap is not installed or cannot create its namespaces here",
                hint="apt-get install bubblewrap (and allow user namespaces), or set [lean] sandbox = 'auto'",
            )
        kind = "bwrap"
    elif setting == "unshare":
        if not _unshare_works():
            raise BackendUnavailableError(
                "sandbox = 'unshare' but 'unshare -rn' does not run here",
                hint="allow unprivileged user namespaces, install bubblewrap, or set [lean] sandbox = 'auto'",
            )
        kind = "unshare"
    else:
        kind = detect_sandbox()
        if kind == "off":
            if require:
                raise BackendUnavailableError(
                    "no sandbox is available for Lean, and [lean] require_sandbox = true",
                    hint="apt-get install bubblewrap, or set require_sandbox = false to run candidates unisolated",
                )
            _log.warning(
                "Lean runs candidate proofs WITHOUT isolation (no working bubblewrap or unshare): "
                "install bubblewrap (apt-get install bubblewrap) before checking untrusted proofs"
            )
    return kind


def wrap_command(
    argv: Sequence[str], kind: SandboxKind, writable: Sequence[str | Path] = (), cwd: str | Path | None = None
) -> list[str]:
    """``argv`` run inside the sandbox ``kind``; ``writable`` folders stay writable under bwrap."""
    if kind == "off":
        return list(argv)
    if kind == "unshare":
        return ["unshare", "-rn", "--", *argv]
    # The whole file system read-only (no tmpfs over /tmp: a toolchain that lives there must stay visible), then
    # the scratch folders writable on top.
    cmd = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
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
