"""A :class:`~malot.lean.session.ProofSession` on the REPL pool: tactic mode on one pinned REPL process.

The session is pinned to one REPL of the pool (proof states live in that process) but does not own it: each command
waits its turn for that REPL (:meth:`malot.lean.repl.ReplPool.open_session`). Every state handle remembers how it
was made (the started declaration and hole, then one tactic after another, or a pickle file), so when the REPL
crashes or hangs the session pins a fresh REPL and re-creates the states it needs by replaying their recipe; the
strategy keeps its handles. A REPL that fails again while replaying ends the session with
:class:`~malot.lean.session.SessionLostError`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from malot.errors import LeanError
from malot.lean.base import CheckResult, Snippet
from malot.lean.repl.process import ReplCrashedError, ReplProtocolError, ReplTimeoutError
from malot.lean.repl.protocol import (
    CommandResponse,
    PickleEnvironment,
    PickleProofState,
    ProofStep,
    ProofStepResponse,
    ReplCommand,
    ReplError,
    ReplResponse,
    UnpickleEnvironment,
    UnpickleProofState,
)
from malot.lean.session import ProofState, SessionLostError, TacticResult
from malot.resources import AsyncResource

if TYPE_CHECKING:
    from malot.lean.repl.pool import ReplPool, _Worker

__all__ = ["ReplProofSession", "SessionAffineVerifier"]

_FAILURES = (ReplCrashedError, ReplTimeoutError, ReplProtocolError)

# How a state is made: ("root", start number, hole index) | ("step", parent handle, tactic) | ("file", path)
_Recipe = tuple[str, Any, Any]


class ReplProofSession(AsyncResource):
    """Tactic mode on one REPL of a :class:`~malot.lean.repl.ReplPool` (see the module docstring).

    ``commands`` counts REPL commands sent (tactics, starts, replays); ``replays`` counts states re-created after a
    process was lost; ``restarts`` counts processes lost.
    """

    backend = "repl"
    supports_pickle = True

    def __init__(self, pool: ReplPool, *, timeout: float) -> None:
        self._pool = pool
        self.timeout = timeout
        self._worker: _Worker | None = None
        self._generation = 0
        self._starts: list[tuple[str, str, str | None]] = []  # (code, header, env pickle) of each start
        self._recipes: dict[int, _Recipe] = {}
        self._goals: dict[int, tuple[str, ...]] = {}
        self._local: dict[int, int] = {}  # handle -> the REPL's proofState id in this generation
        self._env: int | None = None
        self._rebuild: asyncio.Lock = asyncio.Lock()
        self.commands = 0
        self.replays = 0
        self.restarts = 0

    async def open(self) -> None:
        """Take a REPL worker when entered with ``async with``."""
        await self._ensure_worker()

    async def aclose(self) -> None:
        """Unpin the REPL (it goes back to serving checks and sessions)."""
        if self._worker is not None:
            self._pool._unpin(self._worker)
            self._worker = None

    def affine_verifier(self) -> SessionAffineVerifier:
        """The pool as a verifier whose checks run on this session's REPL (e.g. re-checking a proof found here)."""
        return SessionAffineVerifier(self)

    @property
    def pid(self) -> int | None:
        """The pinned REPL's process id (None before the session starts)."""
        return self._worker.process.pid if self._worker is not None else None

    # --- transport --------------------------------------------------------------------------------------------

    async def _ensure_worker(self) -> _Worker:
        if self._worker is None:
            self._worker = await self._pool._pin()
        return self._worker

    async def _send(self, command: ReplCommand, timeout: float | None = None) -> ReplResponse:  # noqa: ASYNC109
        """One command on the pinned REPL; a failed process raises (after the pool replaced it)."""
        worker = await self._ensure_worker()
        if not await self._pool._acquire_worker(worker, shared=True):
            raise ReplCrashedError("the session's REPL process was replaced")
        healthy = False
        try:
            self.commands += 1
            response = await worker.process.send(command, timeout or self.timeout)
            healthy = True
            return response
        finally:
            await self._pool._release_shared(worker, healthy)

    async def _lost(self) -> None:
        """The pinned REPL failed: pin another and forget every process-local id."""
        if self._worker is not None:
            self._pool._unpin(self._worker)
            self._worker = None
        self._generation += 1
        self._local.clear()
        self._env = None
        self.restarts += 1

    # --- session API ------------------------------------------------------------------------------------------

    async def start(self, code: str, *, header: str = "", env_file: str | None = None) -> list[ProofState]:
        """Elaborate ``code`` (with ``sorry`` holes) after ``header`` (or on an environment pickled to
        ``env_file``); one state per hole. Lean errors in ``code`` raise :class:`LeanError`."""
        self._starts.append((code, header, env_file))
        number = len(self._starts) - 1
        for attempt in range(2):
            generation = self._generation
            try:
                handles = await self._run_start(number)
            except _FAILURES as exc:
                if attempt:
                    raise SessionLostError(f"the REPL failed twice while starting the proof: {exc}") from exc
                if generation == self._generation:
                    await self._lost()
                continue
            return [ProofState(id=h, goals=self._goals[h]) for h in handles]
        raise SessionLostError("the REPL failed while starting the proof")  # pragma: no cover

    async def _run_start(self, number: int) -> list[int]:
        code, header, env_file = self._starts[number]
        env: int | None = None
        if env_file is not None:
            reply = await self._send(UnpickleEnvironment(unpickle_env_from=env_file))
            env = _command_response(reply, "unpickling the environment").env
        elif header.strip():
            got = _command_response(await self._send_text(header, None), "the header")
            if any(m.severity == "error" for m in got.messages):
                raise LeanError(f"the header has errors: {_errors(got)}")
            env = got.env
        self._env = env
        response = _command_response(await self._send_text(code, env), "the statement")
        errors = [m for m in response.messages if m.severity == "error"]
        if errors:
            raise LeanError(f"the statement does not elaborate: {errors[0].data}")
        if not response.sorries:
            raise LeanError("the statement has no sorry to start a proof from", hint="end it with ':= by sorry'")
        handles: list[int] = []
        for index, sorry in enumerate(response.sorries):
            if sorry.proof_state is None:
                continue
            handle = self._handle_for(("root", number, index))
            self._local[handle] = sorry.proof_state
            self._goals[handle] = (sorry.goal,) if sorry.goal else ()
            handles.append(handle)
        return handles

    async def _send_text(self, cmd: str, env: int | None) -> ReplResponse:
        from malot.lean.repl.protocol import Command

        return await self._send(Command(cmd=cmd, env=env) if env is not None else Command(cmd=cmd))

    def _handle_for(self, recipe: _Recipe) -> int:
        for handle, known in self._recipes.items():
            if known == recipe and recipe[0] == "root":
                return handle
        handle = len(self._recipes)
        self._recipes[handle] = recipe
        return handle

    async def _local_id(self, handle: int) -> int:
        """The REPL's proofState id for ``handle`` in this generation, replaying its recipe if needed."""
        local = self._local.get(handle)
        if local is not None:
            return local
        recipe = self._recipes.get(handle)
        if recipe is None:
            raise LeanError(f"unknown proof state handle {handle}")
        kind = recipe[0]
        self.replays += 1
        if kind == "root":
            await self._run_start(recipe[1])
        elif kind == "step":
            parent = await self._local_id(recipe[1])
            reply = await self._send(ProofStep(tactic=recipe[2], proof_state=parent))
            if not isinstance(reply, ProofStepResponse):
                raise SessionLostError(f"replaying tactic {recipe[2]!r} failed after a REPL restart")
            self._local[handle] = reply.proof_state
        else:
            reply = await self._send(UnpickleProofState(unpickle_proof_state_from=recipe[1], env=self._env))
            if isinstance(reply, ReplError):
                raise LeanError(f"loading the proof state from {recipe[1]} failed: {reply.message}")
            if not isinstance(reply, ProofStepResponse):
                raise ReplProtocolError(f"expected a proof state from {recipe[1]}, got {type(reply).__name__}")
            self._local[handle] = reply.proof_state
            self._goals.setdefault(handle, tuple(reply.goals))
        local = self._local.get(handle)
        if local is None:
            raise SessionLostError(f"proof state {handle} could not be re-created")
        return local

    async def _with_recovery(self, action: Any) -> Any:
        """Run ``action()`` (which resolves local ids itself); after one process loss, retry on a fresh REPL."""
        for attempt in range(2):
            generation = self._generation
            try:
                return await action()
            except _FAILURES as exc:
                if generation == self._generation:
                    await self._lost()
                if isinstance(exc, ReplTimeoutError):
                    raise  # the command itself is slow: retrying would only time out again
                if attempt:
                    raise SessionLostError(f"the REPL failed again after a restart: {exc}") from exc
        raise SessionLostError("unreachable")  # pragma: no cover

    async def run_tactic(self, state: ProofState, tactic: str, timeout: float | None = None) -> TacticResult:  # noqa: ASYNC109
        """Run ``tactic`` on ``state``; Lean's and the REPL's errors come back as ``TacticResult.error``."""

        async def action() -> ReplResponse:
            local = await self._local_id(state.id)
            return await self._send(ProofStep(tactic=tactic, proof_state=local), timeout)

        try:
            reply = await self._with_recovery(action)
        except ReplTimeoutError as exc:  # the REPL was replaced; the session goes on with the other states
            return TacticResult(tactic=tactic, error=f"timeout: {exc}")
        if isinstance(reply, ReplError):
            return TacticResult(tactic=tactic, error=reply.message)
        if not isinstance(reply, ProofStepResponse):
            return TacticResult(tactic=tactic, error=f"unexpected REPL reply {type(reply).__name__}")
        errors = [m.data for m in reply.messages if m.severity == "error"]
        messages = [m.data for m in reply.messages]
        if errors:
            return TacticResult(tactic=tactic, error=errors[0], messages=messages, status=reply.proof_status)
        handle = len(self._recipes)
        self._recipes[handle] = ("step", state.id, tactic)
        self._local[handle] = reply.proof_state
        goals = tuple(reply.goals)
        self._goals[handle] = goals
        if not goals and reply.proof_status not in (None, "Completed"):
            # the REPL's proof-status bug guard: no goals but not complete (metavariables, sorry)
            return TacticResult(
                tactic=tactic,
                error=f"no goals left but the REPL says {reply.proof_status!r}",
                messages=messages,
                status=reply.proof_status,
            )
        return TacticResult(
            tactic=tactic, state=ProofState(id=handle, goals=goals), messages=messages, status=reply.proof_status
        )

    async def pickle_state(self, state: ProofState, path: str) -> None:
        """Save ``state`` to ``path`` (the REPL's ``pickleTo``)."""

        async def action() -> ReplResponse:
            local = await self._local_id(state.id)
            return await self._send(PickleProofState(pickle_to=path, proof_state=local))

        reply = await self._with_recovery(action)
        if isinstance(reply, ReplError):
            raise LeanError(f"pickling proof state {state.id} failed: {reply.message}")

    async def unpickle_state(self, path: str) -> ProofState:
        """Load a state saved by :meth:`pickle_state` (in any session or process) into this session."""
        handle = len(self._recipes)
        self._recipes[handle] = ("file", path, None)
        try:
            await self._with_recovery(lambda: self._local_id(handle))
        except BaseException:
            del self._recipes[handle]
            raise
        return ProofState(id=handle, goals=self._goals.get(handle, ()))

    async def pickle_env(self, path: str) -> None:
        """Save the environment the proof started on (header) to ``path`` (the REPL's ``pickleTo`` + ``env``)."""
        if self._env is None:
            raise LeanError("no environment to pickle: start a proof after a header first")
        reply = await self._send(PickleEnvironment(pickle_to=path, env=self._env))
        if isinstance(reply, ReplError):
            raise LeanError(f"pickling the environment failed: {reply.message}")


class SessionAffineVerifier:
    """The session's pool as a :class:`~malot.lean.base.Verifier`, its checks run on the session's pinned REPL.

    Every other attribute (``name``, ``sandboxed``, ``final_checker``, ...) is the pool's.
    """

    def __init__(self, session: ReplProofSession) -> None:
        self._session = session

    async def check(self, snippets: Sequence[Snippet], timeout: float | None = None) -> list[CheckResult]:  # noqa: ASYNC109
        """Check on the pinned REPL (any REPL when the session holds none)."""
        pool = self._session._pool
        worker = self._session._worker
        if worker is None:
            return await pool.check(snippets, timeout)
        return await pool.check_on(worker, snippets, timeout)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session._pool, name)


def _command_response(reply: ReplResponse, what: str) -> CommandResponse:
    if isinstance(reply, ReplError):
        raise LeanError(f"the REPL refused {what}: {reply.message}")
    if not isinstance(reply, CommandResponse):
        raise ReplProtocolError(f"expected a command response for {what}, got {type(reply).__name__}")
    return reply


def _errors(response: CommandResponse) -> str:
    return "; ".join(m.data for m in response.messages if m.severity == "error")
