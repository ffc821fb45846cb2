"""One REPL process over native asyncio subprocess streams, in its own process group.

:class:`ReplProcess` owns the child: ``async with ReplProcess(argv) as repl: await repl.send(Command(cmd=...))``.
End of output means the process died (:class:`ReplCrashedError`); a response that is not JSON is
:class:`ReplProtocolError`; a command past its timeout is :class:`ReplTimeoutError`. After any of these, or after a
cancelled ``send``, the process is killed (its whole group): its state is unknown, so the caller replaces it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from malot.errors import LeanError
from malot.lean.repl.protocol import (
    Command,
    CommandResponse,
    ProofStep,
    ProofStepResponse,
    ReplCommand,
    ReplError,
    ReplResponse,
    decode_response,
    encode_command,
)
from malot.lean.sandbox import SandboxKind, limits_preexec, wrap_command

__all__ = ["ReplCrashedError", "ReplProcess", "ReplProtocolError", "ReplTimeoutError"]

_STREAM_LIMIT = 256 * 1024 * 1024  # one response line may be large (infotrees)


class ReplCrashedError(LeanError):
    """The REPL process ended (its output closed) before answering."""


class ReplProtocolError(LeanError):
    """The REPL answered something that is not a JSON response (garbage output)."""


class ReplTimeoutError(LeanError):
    """The REPL did not answer within the time limit (it was killed)."""


class ReplProcess:
    """A running REPL: send commands, get typed responses; the child is killed on exit, error or cancellation."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        memory_limit_mb: int | None = None,
        sandbox: SandboxKind = "off",
        writable: Sequence[str | Path] = (),
        start_timeout: float = 600.0,
    ) -> None:
        self.argv = list(argv)
        self.cwd = cwd
        self.env = dict(env) if env is not None else None
        self.memory_limit_mb = memory_limit_mb
        self.sandbox: SandboxKind = sandbox
        self.writable = list(writable)
        self.start_timeout = start_timeout
        self.commands_sent = 0
        self.started_at = 0.0
        self._proc: asyncio.subprocess.Process | None = None
        self._reading: asyncio.Future[None] | None = None  # the last command written whose answer is unread
        self._pending_write: tuple[list[bytes], asyncio.Future[None]] | None = None
        self.dead = False

    @property
    def pid(self) -> int | None:
        """The process id (None before start)."""
        return self._proc.pid if self._proc is not None else None

    @property
    def alive(self) -> bool:
        """True while the process runs and has not been given up on."""
        return self._proc is not None and self._proc.returncode is None and not self.dead

    async def start(self) -> None:
        """Start the process (in a new session, so it and its children form one killable group)."""
        argv = wrap_command(self.argv, self.sandbox, writable=self.writable, cwd=self.cwd)
        self._proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            cwd=str(self.cwd) if self.cwd is not None else None,
            env={**os.environ, **self.env} if self.env is not None else None,
            start_new_session=True,
            preexec_fn=limits_preexec(self.memory_limit_mb),
            limit=_STREAM_LIMIT,
        )
        self.started_at = time.monotonic()

    async def __aenter__(self) -> ReplProcess:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.kill()

    async def kill(self) -> None:
        """Kill the process group and reap the child (safe to call twice)."""
        self.dead = True
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        if proc.stdin is not None:
            proc.stdin.close()
        with contextlib.suppress(ProcessLookupError):
            await asyncio.shield(proc.wait())

    async def send(self, command: ReplCommand, timeout: float | None = None) -> ReplResponse:  # noqa: ASYNC109
        """Send one command and read its response (the process is killed on timeout, crash, garbage, cancel).

        Concurrent sends are pipelined: each command is written at once and the REPL answers them in order, so it
        never idles between them; each caller reads its own answer when the one before it has been read.
        ``timeout`` counts from the moment the previous answer was read (this command's own Lean time).
        """
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdout is None or not self.alive:
            raise ReplCrashedError("the REPL process is not running")
        previous = self._reading
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._reading = mine
        ok = False
        try:
            flushed = self._queue_write(encode_command(command))  # queued before any await: the answers' order
            self.commands_sent += 1
            await flushed
            await proc.stdin.drain()
            if previous is not None:
                await asyncio.shield(previous)
            if not self.alive:
                raise ReplCrashedError("the REPL process was stopped while this command waited")
            async with asyncio.timeout(timeout):
                raw = await self._read_response(proc.stdout)
            response = self._decode(raw)
            ok = True
            return response
        except TimeoutError:
            raise ReplTimeoutError(f"the REPL did not answer within {timeout:g}s") from None
        except (BrokenPipeError, ConnectionResetError):
            raise ReplCrashedError(f"the REPL process exited (status {proc.returncode})") from None
        finally:
            if not ok:  # error or cancellation: the REPL's state is unknown (answers may be left unread); kill it
                await self.kill()
            if not mine.done():
                mine.set_result(None)
            if self._reading is mine:
                self._reading = None

    def _queue_write(self, data: bytes) -> asyncio.Future[None]:
        """Queue ``data`` for stdin; everything queued in one event-loop turn goes out in one write (one wake-up
        of the REPL for the k tactics of an expansion instead of k)."""
        if self._pending_write is None:
            self._pending_write = ([], asyncio.get_running_loop().create_future())
            asyncio.get_running_loop().call_soon(self._flush_writes)
        chunks, done = self._pending_write
        chunks.append(data)
        return done

    def _flush_writes(self) -> None:
        pending, self._pending_write = self._pending_write, None
        if pending is None:
            return
        chunks, done = pending
        proc = self._proc
        try:
            if proc is None or proc.stdin is None or not self.alive:
                raise ReplCrashedError("the REPL process is not running")
            proc.stdin.write(b"".join(chunks))
        except (ReplCrashedError, BrokenPipeError, ConnectionResetError, RuntimeError) as exc:
            if not done.done():
                done.set_exception(ReplCrashedError(f"writing to the REPL failed: {exc}"))
                done.exception()  # retrieved by every sender awaiting it; do not warn when none does
            return
        if not done.done():
            done.set_result(None)

    async def _read_response(self, stdout: asyncio.StreamReader) -> bytes:
        """Bytes up to the blank line that ends a response (one read for a many-line pretty-printed answer)."""
        while True:
            try:
                chunk = await stdout.readuntil(b"\n\n")
            except asyncio.IncompleteReadError:
                raise ReplCrashedError("the REPL's output ended: the process crashed or exited") from None
            if chunk.strip():
                return chunk

    @staticmethod
    def _decode(raw: bytes) -> ReplResponse:
        try:
            obj = json.loads(raw)
            return decode_response(obj)
        except (ValueError, UnicodeDecodeError) as exc:
            preview = raw[:120].decode("utf-8", errors="replace")
            raise ReplProtocolError(f"the REPL printed something that is not a response: {preview!r}") from exc

    async def command(self, cmd: str, env: int | None = None, timeout: float | None = None) -> CommandResponse:  # noqa: ASYNC109
        """Elaborate ``cmd`` (on top of ``env``); a REPL error reply raises :class:`LeanError`."""
        response = await self.send(Command(cmd=cmd, env=env) if env is not None else Command(cmd=cmd), timeout)
        if isinstance(response, ReplError):
            raise LeanError(f"the REPL refused the command: {response.message}")
        if not isinstance(response, CommandResponse):
            raise ReplProtocolError(f"expected a command response, got {type(response).__name__}")
        return response

    async def tactic(self, tactic: str, proof_state: int, timeout: float | None = None) -> ProofStepResponse:  # noqa: ASYNC109
        """Run ``tactic`` on ``proof_state``. Its "Completed" status is a hint, never a verdict."""
        response = await self.send(ProofStep(tactic=tactic, proof_state=proof_state), timeout)
        if isinstance(response, ReplError):
            raise LeanError(f"the REPL refused the tactic: {response.message}")
        if not isinstance(response, ProofStepResponse):
            raise ReplProtocolError(f"expected a proof-step response, got {type(response).__name__}")
        return response
