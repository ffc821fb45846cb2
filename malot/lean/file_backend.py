"""The file backend: one ``lean --json FILE`` (or ``lake env lean --json FILE`` in a Lake project) per snippet.

For users without the REPL and for one-off checks. Each Lean runs in its own process group (killed as a group on
timeout or cancellation), under an optional address-space cap and the sandbox the machine allows; at most
``workers`` run at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from malot.errors import BackendUnavailableError
from malot.lean.base import CheckResult, LeanMessage, Snippet
from malot.lean.cputime import TIMES_WRAPPER, leaf_descendants, split_times
from malot.lean.final_check import FinalChecker
from malot.lean.messages import parse_json_lines
from malot.lean.sandbox import SandboxKind, limits_preexec, resolve_sandbox, wrap_command
from malot.resources import AsyncResource

__all__ = ["LeanFileVerifier", "default_workers", "find_lean", "terminate_process"]


def default_workers() -> int:
    """Cores - 1, at least 1: leave one core for malot and the model."""
    return max(1, (os.cpu_count() or 2) - 1)


def find_lean(lean: str | Path | None = None, project: str | Path | None = None) -> Path:
    """The ``lean`` executable to use: ``lean``, else ``$MALOT_LEAN``, else ``lean`` on PATH."""
    candidate = lean or os.environ.get("MALOT_LEAN")
    if candidate:
        path = Path(candidate).expanduser()
        if not path.is_file():
            found = shutil.which(str(candidate))
            if found is None:
                raise BackendUnavailableError(
                    f"no Lean executable at {candidate}", hint="point --lean / MALOT_LEAN at a 'lean' binary"
                )
            path = Path(found)
        return path.resolve()
    found = shutil.which("lean")
    if found is None:
        raise BackendUnavailableError(
            "no 'lean' on PATH",
            hint="install Lean with elan, set MALOT_LEAN=/path/to/lean, or use --project lean_project",
        )
    return Path(found)


async def terminate_process(proc: asyncio.subprocess.Process) -> None:
    """Kill ``proc`` and its process group (SIGTERM, then SIGKILL) and wait for it."""
    await _terminate(proc)


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


async def _terminate(proc: asyncio.subprocess.Process) -> None:
    """Kill Lean, then its wrappers, then anything left in the process group; reap the child.

    Lean (a leaf of the tree) dies first so its shell reaps it; killing the whole group at once would leave Lean
    a zombie for ``init`` to collect.
    """
    if proc.returncode is None:
        leaves = leaf_descendants(proc.pid)
        for pid in leaves:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if leaves:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(proc.wait()), 2.0)
    _kill_group(proc)
    with contextlib.suppress(ProcessLookupError):
        await asyncio.shield(proc.wait())


class LeanFileVerifier(AsyncResource):
    """Checks each snippet as a file with ``lean --json``; implements :class:`~malot.lean.base.Verifier`.

    ``lean`` is a ``lean`` executable (default: ``$MALOT_LEAN`` or PATH). With ``project`` (a Lake project
    folder), Lean runs as ``lake env lean`` inside it, so the project's Mathlib is importable.
    """

    name = "file"

    def __init__(
        self,
        lean: str | Path | None = None,
        *,
        project: str | Path | None = None,
        workers: int | None = None,
        timeout: float = 300.0,
        memory_limit_mb: int | None = None,
        sandbox: str = "auto",
        extra_args: Sequence[str] = (),
        final_check: str = "auto",
        require_sandbox: bool = False,
        lean4checker: bool = False,
    ) -> None:
        self.project = Path(project).expanduser().resolve() if project is not None else None
        if self.project is not None:
            if not (self.project / "lakefile.lean").is_file() and not (self.project / "lakefile.toml").is_file():
                raise BackendUnavailableError(
                    f"{self.project} is not a Lake project (no lakefile)", hint="pass the folder of lean_project/"
                )
            lake = shutil.which("lake")
            if lake is None:
                raise BackendUnavailableError("--project needs 'lake' on PATH", hint="install Lean with elan")
            self._argv = [lake, "env", str(lean or "lean"), "--json", *extra_args]
        else:
            self._argv = [str(find_lean(lean)), "--json", *extra_args]
        self.workers = workers or default_workers()
        self.timeout = timeout
        self.memory_limit_mb = memory_limit_mb
        self.sandbox_kind: SandboxKind = resolve_sandbox(sandbox, require=require_sandbox)
        self.sandboxed = self.sandbox_kind == "bwrap"
        self._semaphore = asyncio.Semaphore(self.workers)
        # the environment-level final check (see malot.lean.final_check), with the same Lean and isolation
        self.final_checker: FinalChecker | None = None
        if final_check != "off":
            self.final_checker = FinalChecker(
                lean or "lean" if self.project is not None else self._argv[0],
                project=self.project,
                sandbox=self.sandbox_kind,
                timeout=timeout,
                memory_limit_mb=memory_limit_mb,
                workers=self.workers,
                lean4checker=lean4checker,
            )
        self._scratch: Path | None = None
        self._running: set[asyncio.subprocess.Process] = set()
        self._counter = 0

    def describe(self) -> str:
        """One line saying which Lean runs and how."""
        where = f"lake env lean in {self.project}" if self.project else self._argv[0]
        final = "on" if self.final_checker else "off"
        return f"file backend: {where}, {self.workers} workers, sandbox={self.sandbox_kind}, final check={final}"

    async def aclose(self) -> None:
        """Kill any Lean still running and remove the scratch folder."""
        await asyncio.gather(*(_terminate(proc) for proc in list(self._running)), return_exceptions=True)
        if self.final_checker is not None:
            await self.final_checker.aclose()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def _scratch_dir(self) -> Path:
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="malot-lean-"))
        return self._scratch

    async def check(self, snippets: Sequence[Snippet], timeout: float | None = None) -> list[CheckResult]:  # noqa: ASYNC109
        """Check every snippet (at most ``workers`` Lean processes at once); results in input order."""
        return list(await asyncio.gather(*(self._check_one(s, timeout or self.timeout) for s in snippets)))

    async def _check_one(self, snippet: Snippet, timeout: float) -> CheckResult:  # noqa: ASYNC109
        async with self._semaphore:
            return await self.run_file(snippet, timeout)

    async def run_file(self, snippet: Snippet, timeout: float) -> CheckResult:  # noqa: ASYNC109
        """Write ``snippet`` to the scratch folder and run Lean on it once (no concurrency limit)."""
        scratch = self._scratch_dir()
        self._counter += 1
        path = scratch / f"Check{self._counter}.lean"
        path.write_text(snippet.code, encoding="utf-8")
        timed = ["sh", "-c", TIMES_WRAPPER, "sh", *self._argv, str(path)]
        argv = wrap_command(timed, self.sandbox_kind, writable=[scratch], cwd=self.project)
        started = time.perf_counter()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=str(self.project) if self.project else str(scratch),
                start_new_session=True,
                preexec_fn=limits_preexec(self.memory_limit_mb),
            )
        except OSError as exc:
            path.unlink(missing_ok=True)
            return CheckResult(id=snippet.id, status="error", error=f"could not start Lean: {exc}", backend=self.name)
        self._running.add(proc)
        try:
            stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            await _terminate(proc)
            return CheckResult(
                id=snippet.id,
                status="timeout",
                error=f"Lean ran past the {timeout:g}s limit and was killed",
                time_s=time.perf_counter() - started,
                backend=self.name,
            )
        finally:
            if proc.returncode is None:  # cancelled: kill Lean and its group before leaving
                await _terminate(proc)
            self._running.discard(proc)
            path.unlink(missing_ok=True)
        elapsed = time.perf_counter() - started
        return self._result(snippet.id, proc.returncode, stdout, stderr, elapsed)

    def _result(self, sid: str, rc: int | None, stdout: bytes, stderr: bytes, elapsed: float) -> CheckResult:
        text = stdout.decode("utf-8", errors="replace")
        err, cpu = split_times(stderr.decode("utf-8", errors="replace"))
        messages, other = parse_json_lines(text)
        if rc in (0, 1):
            extra = [ln for ln in other + err.splitlines() if ln.strip()]
            if rc == 1 and not any(m.is_error for m in messages) and extra:
                messages.append(LeanMessage(severity="error", data="\n".join(extra[-20:])))
            return CheckResult(id=sid, status="ok", messages=messages, time_s=elapsed, cpu_s=cpu, backend=self.name)
        tail = "\n".join((other + err.splitlines())[-10:]).strip()
        if rc == 134 or "out of memory" in tail.lower() or "failed to create thread" in tail:
            if self.memory_limit_mb is not None:
                reason = f"Lean aborted (exit {rc}), probably at the memory limit ({self.memory_limit_mb} MB)"
            else:  # no limit set: the machine's memory ran out, or Lean crashed
                reason = f"Lean aborted (exit {rc}; out of memory or a crash; no memory limit is set)"
        elif rc is not None and (rc < 0 or rc > 128):  # killed by a signal (the shell reports 128 + signal)
            reason = f"Lean was killed by signal {-rc if rc < 0 else rc - 128}"
        else:
            reason = f"Lean exited with status {rc}"
        return CheckResult(
            id=sid,
            status="crash",
            messages=messages,
            error=f"{reason}: {tail}" if tail else reason,
            time_s=elapsed,
            cpu_s=cpu,
            backend=self.name,
        )

    async def lean4checker(self, code: str, timeout: float | None = None) -> bool | None:  # noqa: ASYNC109
        """Re-check ``code``'s environment with lean4checker when it is installed (None when it is not)."""
        exe = shutil.which("lean4checker")
        if exe is None:
            return None
        scratch = self._scratch_dir() / "l4c"
        scratch.mkdir(exist_ok=True)
        src = scratch / "MalotCheck.lean"
        src.write_text(code, encoding="utf-8")
        base = [a for a in self._argv if a != "--json"]
        compile_argv = [*base, "-o", str(scratch / "MalotCheck.olean"), str(src)]
        env = {**os.environ, "LEAN_PATH": f"{scratch}:{os.environ.get('LEAN_PATH', '')}"}
        for argv in (compile_argv, [exe, "MalotCheck"]):  # replays the module's own declarations in the kernel
            proc = await asyncio.create_subprocess_exec(
                *argv, cwd=str(scratch), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
            )
            try:
                await asyncio.wait_for(proc.communicate(), timeout or self.timeout)
            except TimeoutError:
                proc.kill()
                await proc.wait()
                return False
            if proc.returncode != 0:
                return False
        return True
