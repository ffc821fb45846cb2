"""LeanDojo adapter: the proof-session interface over ``lean_dojo.Dojo`` (extra ``malot[leandojo]``).

For repositories traced by LeanDojo, :class:`LeanDojoSessions` opens a :class:`DojoSession` per problem: its
:meth:`DojoSession.start` finds the theorem (by the declared name, matched against the traced theorems' full names)
and enters ``Dojo(theorem)``; :meth:`DojoSession.run_tactic` calls ``dojo.run_tac`` and translates LeanDojo's
results (:func:`translate_result`): ``TacticState`` -> a state with its goals, ``ProofFinished`` -> a state with no
goals (provisional, as every tactic-mode success), ``LeanError`` -> an error, ``ProofGivenUp`` (``sorry``) -> an
error, ``DojoTacticTimeoutError`` -> an error, ``DojoCrashError`` -> :class:`~malot.lean.session.SessionLostError`.

``lean_dojo`` is imported lazily, only when a session starts. Dojo is a blocking library (it drives its own
``pexpect`` process), so its calls run in a worker thread, one at a time per session. Pickling is not supported.
The search strategies need a verifier for the final whole-proof check as well: wrap both with
:class:`malot.lean.session.SessionVerifier`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from malot.errors import BackendUnavailableError, LeanError
from malot.lean.session import ProofState, SessionLostError, SessionUnsupportedError, TacticResult

__all__ = ["DojoSession", "LeanDojoSessions", "split_pp_goals", "translate_result"]

_DECL = re.compile(r"\b(?:theorem|lemma)\s+([^\s:({\[]+)")


def _lean_dojo() -> Any:
    try:
        import lean_dojo
    except ImportError:
        raise BackendUnavailableError(
            "the LeanDojo adapter needs lean-dojo, which is not installed", hint="pip install 'malot[leandojo]'"
        ) from None
    return lean_dojo


def split_pp_goals(pp: str) -> tuple[str, ...]:
    """The goals of a LeanDojo pretty-printed tactic state (goals are separated by blank lines)."""
    parts = [p.strip("\n") for p in re.split(r"\n\s*\n", pp.strip()) if p.strip()]
    if len(parts) == pp.count("⊢"):
        return tuple(parts)
    return (pp.strip(),) if pp.strip() else ()


def translate_result(result: Any, tactic: str, handle: int) -> TacticResult:
    """LeanDojo's result of ``run_tac`` as a :class:`~malot.lean.session.TacticResult` (state id ``handle``)."""
    kind = type(result).__name__
    if kind == "TacticState":
        return TacticResult(
            tactic=tactic,
            state=ProofState(id=handle, goals=split_pp_goals(str(result.pp))),
            messages=[str(result.message)] if getattr(result, "message", None) else [],
            status="TacticState",
        )
    if kind == "ProofFinished":
        return TacticResult(
            tactic=tactic,
            state=ProofState(id=handle, goals=()),
            messages=[str(result.message)] if getattr(result, "message", None) else [],
            status="ProofFinished",
        )
    if kind == "LeanError":
        return TacticResult(tactic=tactic, error=str(result.error), status="LeanError")
    if kind == "ProofGivenUp":
        return TacticResult(tactic=tactic, error="the tactic gave up the proof (sorry)", status="ProofGivenUp")
    return TacticResult(tactic=tactic, error=f"unexpected LeanDojo result {kind}", status=kind)


class DojoSession:
    """A proof session on one ``lean_dojo.Dojo`` (see the module docstring).

    ``theorem_for(name)`` returns the ``lean_dojo.Theorem`` for a declared name; ``dojo_factory(theorem, timeout)``
    builds the Dojo context manager (default ``lean_dojo.Dojo``).
    """

    backend = "leandojo"
    supports_pickle = False

    def __init__(
        self,
        theorem_for: Callable[[str], Any],
        *,
        timeout: float = 600.0,
        dojo_factory: Callable[..., Any] | None = None,
    ) -> None:
        self.theorem_for = theorem_for
        self.timeout = timeout
        self.dojo_factory = dojo_factory
        self._context: Any = None
        self._dojo: Any = None
        self._states: dict[int, Any] = {}
        self._lock = asyncio.Lock()
        self.tactic_calls = 0

    async def __aenter__(self) -> DojoSession:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Leave the Dojo (kills its process)."""
        context, self._context, self._dojo = self._context, None, None
        if context is not None:
            await asyncio.to_thread(context.__exit__, None, None, None)

    def _keep(self, native: Any) -> int:
        handle = len(self._states)
        self._states[handle] = native
        return handle

    async def start(self, code: str, *, header: str = "") -> list[ProofState]:
        """Enter the Dojo of the theorem ``code`` declares; one state, the theorem's initial goals."""
        match = _DECL.search(code)
        if match is None:
            raise LeanError("LeanDojo sessions start from a theorem declaration", hint="pass 'theorem NAME ...'")
        theorem = self.theorem_for(match.group(1))
        factory = self.dojo_factory or _lean_dojo().Dojo
        context = factory(theorem, timeout=int(self.timeout))
        dojo, initial = await asyncio.to_thread(context.__enter__)
        await self.aclose()
        self._context, self._dojo = context, dojo
        handle = self._keep(initial)
        return [ProofState(id=handle, goals=split_pp_goals(str(initial.pp)))]

    async def run_tactic(self, state: ProofState, tactic: str, timeout: float | None = None) -> TacticResult:  # noqa: ASYNC109
        """``dojo.run_tac`` on the state; LeanDojo's result types translated by :func:`translate_result`."""
        native = self._states.get(state.id)
        if native is None or self._dojo is None:
            return TacticResult(tactic=tactic, error="Unknown proof state.")
        async with self._lock:  # Dojo drives one process: one tactic at a time
            self.tactic_calls += 1
            try:
                result = await asyncio.to_thread(self._dojo.run_tac, native, tactic)
            except Exception as exc:
                name = type(exc).__name__
                if name == "DojoTacticTimeoutError":
                    return TacticResult(tactic=tactic, error=f"timeout: {exc}", status=name)
                if name == "DojoCrashError":
                    raise SessionLostError(f"the LeanDojo process crashed: {exc}") from exc
                raise
        handle = self._keep(result) if type(result).__name__ == "TacticState" else len(self._states)
        return translate_result(result, tactic, handle)

    async def pickle_state(self, state: ProofState, path: str) -> None:
        """Not supported by LeanDojo."""
        raise SessionUnsupportedError("LeanDojo sessions cannot pickle proof states")

    async def unpickle_state(self, path: str) -> ProofState:
        """Not supported by LeanDojo."""
        raise SessionUnsupportedError("LeanDojo sessions cannot pickle proof states")


class LeanDojoSessions:
    """Opens :class:`DojoSession` s for the theorems of a traced repository.

    ``repo`` is a ``lean_dojo.LeanGitRepo`` (or ``(url, commit)``); ``theorems`` maps full names to their file paths
    in the repository (what the LeanDojo benchmark's ``full_name`` / ``file_path`` fields hold). A declared name
    matches a full name equal to it or ending in ``.name``.
    """

    name = "leandojo"

    def __init__(
        self,
        repo: Any,
        theorems: Mapping[str, str],
        *,
        timeout: float = 600.0,
        dojo_factory: Callable[..., Any] | None = None,
        theorem_factory: Callable[[Any, str, str], Any] | None = None,
    ) -> None:
        self.repo = repo
        self.theorems = dict(theorems)
        self.timeout = timeout
        self.dojo_factory = dojo_factory
        self.theorem_factory = theorem_factory

    @classmethod
    def from_benchmark(cls, repo: Any, path: str | Path, **kwargs: Any) -> LeanDojoSessions:
        """Sessions for the theorems of a LeanDojo benchmark (a ``train/val/test.json`` file, or a folder holding
        them, e.g. ``random/``): their ``full_name`` and ``file_path``, the same files
        :func:`malot.eval.datasets.load_leandojo` turns into problems."""
        import json

        root = Path(path)
        files = [root] if root.is_file() else sorted(root.rglob("*.json"))
        theorems: dict[str, str] = {}
        for file in files:
            entries = json.loads(file.read_text(encoding="utf-8"))
            if not isinstance(entries, list):
                raise LeanError(f"{file}: expected a JSON list of theorems (the LeanDojo benchmark layout)")
            for entry in entries:
                if isinstance(entry, dict) and isinstance(entry.get("full_name"), str) and entry.get("file_path"):
                    theorems.setdefault(entry["full_name"], str(entry["file_path"]))
        if not theorems:
            raise LeanError(f"no LeanDojo theorems in {root}", hint="pass a benchmark split file or folder")
        return cls(repo, theorems, **kwargs)

    def theorem_for(self, declared: str) -> Any:
        """The ``lean_dojo.Theorem`` whose full name is ``declared`` (or ends in ``.declared``)."""
        found = [n for n in self.theorems if n == declared or n.endswith("." + declared)]
        if len(found) != 1:
            what = "no" if not found else f"{len(found)}"
            raise LeanError(f"{what} traced theorem matches {declared!r}", hint="list it in the theorems mapping")
        full_name = found[0]
        if self.theorem_factory is not None:
            return self.theorem_factory(self.repo, self.theorems[full_name], full_name)
        lean_dojo = _lean_dojo()
        repo = self.repo if not isinstance(self.repo, tuple) else lean_dojo.LeanGitRepo(*self.repo)
        return lean_dojo.Theorem(repo, self.theorems[full_name], full_name)

    def open_session(self, *, timeout: float | None = None) -> DojoSession:
        """A new session (one Dojo per started theorem)."""
        return DojoSession(self.theorem_for, timeout=timeout or self.timeout, dojo_factory=self.dojo_factory)
