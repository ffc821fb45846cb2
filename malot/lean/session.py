"""The interactive proof-session API: proof states, tactics, pickling, and which verdict is final.

A :class:`ProofSession` is what tactic-level strategies (best-first search, truncate-and-resume, decomposition)
use instead of a REPL process. It is opened by a backend (the REPL pool: :meth:`malot.lean.repl.ReplPool.open_session`;
LeanDojo: :class:`malot.lean.leandojo.DojoSession`; tests: :class:`malot.testing.toy_tactics.ToyTacticEnv`) and
offers:

* :meth:`ProofSession.start`: elaborate a theorem whose proof is ``sorry`` (or has ``sorry`` holes) and get one
  :class:`ProofState` per hole, in source order;
* :meth:`ProofSession.run_tactic`: run one tactic on a state and get a :class:`TacticResult`: the new state (its
  goals, possibly none), or Lean's error;
* :meth:`ProofSession.pickle_state` / :meth:`ProofSession.unpickle_state` where the backend supports it
  (:attr:`ProofSession.supports_pickle`), otherwise :class:`SessionUnsupportedError`.

**Which verdict is final.** A :class:`TacticResult` whose state has no goals is only *provisional*
(``result.verdict == "provisional"``): the REPL's tactic mode has accepted wrong proofs (the proof-status bug:
a tactic that leaves metavariables or uses ``sorry`` can still report no goals). The final verdict on a proof found
in tactic mode always comes from the acceptance rule re-checking the assembled proof as a whole command:
:func:`confirm_proof` (a thin call of :func:`malot.lean.acceptance.verify_candidate`). The search strategies route
every proof they find through it.

State handles (:attr:`ProofState.id`) are valid only in the session that made them. A session may survive the loss
of its process (the REPL backend re-creates states by replaying their tactic path), so strategies keep using the
same handles.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from malot.errors import LeanError

if TYPE_CHECKING:
    from malot.lean.base import CheckResult

__all__ = [
    "ProofSession",
    "ProofState",
    "SessionLostError",
    "SessionUnsupportedError",
    "SessionVerifier",
    "TacticResult",
    "confirm_proof",
    "normalize_goals",
]


class SessionUnsupportedError(LeanError):
    """The session's backend cannot do this (e.g. pickling on LeanDojo)."""


class SessionLostError(LeanError):
    """The session's backend is gone and could not be restored (its process crashed and replay failed)."""


_WS = re.compile(r"\s+")
_CASE = re.compile(r"^case [^\n]*\n", re.MULTILINE)


def normalize_goals(goals: Sequence[str]) -> str:
    """A normalised pretty-print of a goal list, used to deduplicate states.

    Whitespace runs become one space and ``case`` tags are dropped (they name a goal, they do not change it); goal
    order is kept (tactics act on the first goal).
    """
    return "\n\n".join(_WS.sub(" ", _CASE.sub("", g)).strip() for g in goals)


class ProofState(BaseModel):
    """A proof state of a session: its handle and its goals, pretty-printed as Lean prints them."""

    model_config = ConfigDict(frozen=True)

    id: int
    goals: tuple[str, ...] = ()

    @property
    def closed(self) -> bool:
        """No goals are left (provisional: see the module docstring)."""
        return not self.goals

    @cached_property
    def key(self) -> str:
        """The normalised goals (:func:`normalize_goals`): equal keys are the same state for search purposes."""
        return normalize_goals(self.goals)

    def pretty(self) -> str:
        """The goals as a prompt shows them (``no goals`` when closed)."""
        return "\n\n".join(self.goals) if self.goals else "no goals"


class TacticResult(BaseModel):
    """What one tactic did: a new :class:`ProofState`, or an ``error``.

    ``status`` is the backend's own word on the proof (the REPL's ``proofStatus``, LeanDojo's result type); it is a
    hint. ``verdict`` is ``"provisional"`` when the tactic closed every goal, ``"open"`` when goals remain and
    ``"error"`` on failure; never final (:func:`confirm_proof` gives the final verdict).
    """

    model_config = ConfigDict(frozen=True)

    #: Tactic results are never the final verdict on a proof.
    final: ClassVar[bool] = False

    tactic: str
    state: ProofState | None = None
    error: str | None = None
    messages: list[str] = Field(default_factory=list)
    status: str | None = None

    @property
    def ok(self) -> bool:
        """The tactic ran without error and gave a state."""
        return self.error is None and self.state is not None

    @property
    def verdict(self) -> Literal["provisional", "open", "error"]:
        """``provisional`` (no goals left), ``open`` (goals remain) or ``error``."""
        if not self.ok:
            return "error"
        assert self.state is not None
        return "provisional" if self.state.closed else "open"


@runtime_checkable
class ProofSession(Protocol):
    """An interactive Lean session (see the module docstring). Use as ``async with``; closing releases it."""

    backend: str
    supports_pickle: bool

    async def start(self, code: str, *, header: str = "") -> list[ProofState]:
        """Elaborate ``code`` (a declaration with ``sorry`` holes) after ``header``; one state per hole."""
        ...

    async def run_tactic(self, state: ProofState, tactic: str, timeout: float | None = None) -> TacticResult:  # noqa: ASYNC109
        """Run ``tactic`` on ``state``; Lean's errors come back in the result, not as exceptions."""
        ...

    async def pickle_state(self, state: ProofState, path: str) -> None:
        """Save ``state`` to ``path`` (raises :class:`SessionUnsupportedError` where unsupported)."""
        ...

    async def unpickle_state(self, path: str) -> ProofState:
        """Load a state saved by :meth:`pickle_state` into this session."""
        ...

    async def aclose(self) -> None:
        """Release the session's process or connection."""
        ...

    async def __aenter__(self) -> ProofSession: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class SessionVerifier:
    """A verifier for whole proofs plus a separate source of proof sessions (e.g. LeanDojo next to a REPL pool).

    ``check`` and the context manager go to ``verifier``; ``open_session`` to ``sessions.open_session``; other
    attributes (``name``, ``sandboxed``, ...) are the verifier's.
    """

    def __init__(self, verifier: Any, sessions: Any) -> None:
        self.verifier = verifier
        self.sessions = sessions

    def open_session(self, **kwargs: Any) -> ProofSession:
        """A proof session from ``sessions``."""
        session: ProofSession = self.sessions.open_session(**kwargs)
        return session

    async def check(self, snippets: Sequence[Any], timeout: float | None = None) -> list[CheckResult]:  # noqa: ASYNC109
        """The verifier's whole-snippet check."""
        results: list[CheckResult] = await self.verifier.check(snippets, timeout)
        return results

    async def aclose(self) -> None:
        """Close the verifier."""
        await self.verifier.aclose()

    async def __aenter__(self) -> SessionVerifier:
        await self.verifier.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.verifier.__aexit__(exc_type, exc, tb)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.verifier, name)


async def confirm_proof(
    verifier: Any,
    target: Any,
    proof: str,
    rule: Any = None,
    timeout: float | None = None,  # noqa: ASYNC109
) -> CheckResult:
    """The final verdict on a proof found in tactic mode: the acceptance rule re-checks it as a whole command.

    ``target`` is a :class:`~malot.lean.acceptance.TargetTheorem`, ``proof`` the assembled declaration (or its proof
    body); the result's ``accepted`` is the only verdict that counts.
    """
    from malot.lean.acceptance import verify_candidate

    return await verify_candidate(verifier, target, proof, rule, timeout)
