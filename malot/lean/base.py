"""What every Lean backend shares: snippets in, :class:`CheckResult` out, through one :class:`Verifier` protocol.

A backend (REPL pool, ``lean --json`` files, Kimina server) only reports what Lean said: messages, sorries,
timings. Whether a proof *counts* is decided by :mod:`malot.lean.acceptance`, which fills the verdict flags of the
same :class:`CheckResult`, so one object carries both Lean's words and the rule's verdict.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from types import TracebackType
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "SORRY_WARNINGS",
    "CheckResult",
    "CheckStatus",
    "LeanMessage",
    "Position",
    "Severity",
    "Snippet",
    "SorryInfo",
    "Verifier",
    "is_sorry_warning",
]

Severity = Literal["error", "warning", "info", "information", "trace"]
CheckStatus = Literal["ok", "timeout", "crash", "error", "screened"]

#: The warning Lean prints for a declaration that uses ``sorry``: older Lean quoted with ``'sorry'``, newer
#: Lean with backticks. Both are matched.
SORRY_WARNINGS = ("declaration uses 'sorry'", "declaration uses `sorry`")
_SORRY_RE = re.compile(r"declaration uses ['`]sorry['`]")


def is_sorry_warning(text: str) -> bool:
    """True when ``text`` is Lean's "declaration uses sorry" message, in either quoting style."""
    return _SORRY_RE.search(text) is not None


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")


class Snippet(_Frozen):
    """One piece of Lean source to check as a whole file (header included), with a caller-chosen id."""

    id: str
    code: str


class Position(_Frozen):
    """A position in a snippet: 1-based line, 0-based column (Lean's convention)."""

    line: int
    column: int


class LeanMessage(_Frozen):
    """One message Lean printed: severity, where it starts (and ends), and its text."""

    severity: Severity
    pos: Position | None = None
    end_pos: Position | None = Field(None, alias="endPos")
    data: str

    @property
    def is_error(self) -> bool:
        """True for error messages."""
        return self.severity == "error"

    def short(self) -> str:
        """``line:col: severity: text`` on one line, for logs and prompts."""
        where = f"{self.pos.line}:{self.pos.column}: " if self.pos else ""
        return f"{where}{self.severity}: {self.data}"


class SorryInfo(_Frozen):
    """A ``sorry`` Lean found (REPL ``sorries`` list): where it is and the goal it stands for."""

    pos: Position | None = None
    end_pos: Position | None = Field(None, alias="endPos")
    goal: str = ""
    proof_state: int | None = Field(None, alias="proofState")


class CheckResult(BaseModel):
    """Lean's answer for one snippet, plus the acceptance rule's verdict flags.

    Flags are ``None`` when not evaluated (a raw :meth:`Verifier.check` does not apply the acceptance rule;
    :func:`malot.lean.acceptance.verify_candidate` fills every flag). ``accepted`` is True only when the acceptance
    rule ran and every flag passed.
    """

    model_config = ConfigDict(populate_by_name=True)

    id: str
    status: CheckStatus = "ok"
    messages: list[LeanMessage] = Field(default_factory=list)
    sorries: list[SorryInfo] = Field(default_factory=list)
    axioms: list[str] | None = None
    time_s: float = 0.0
    cpu_s: float | None = None
    backend: str = ""
    error: str | None = None
    code: str | None = None
    # verdict flags (None: not evaluated)
    screen_ok: bool | None = None
    violations: list[str] = Field(default_factory=list)
    statement_respliced: bool | None = None
    target_declared: bool | None = None
    no_errors: bool | None = None
    no_sorry: bool | None = None
    no_exit: bool | None = None
    whole_command_checked: bool | None = None
    axioms_allowed: bool | None = None
    disallowed_axioms: list[str] = Field(default_factory=list)
    lean4checker_ok: bool | None = None
    sandboxed: bool | None = None
    isolation: str | None = Field(None, description="how Lean was isolated: bwrap, unshare or off")
    final_check: str | None = Field(
        None, description="the environment-level final check: passed, failed, unavailable (no local Lean), off"
    )
    decided_by: str | None = Field(
        None,
        description=(
            "the stage that decided the verdict: screen, fast-check (Lean's messages in the fast loop), guard, "
            "header, reference, compile, type, kind, axioms, replay (final check stages), or final-check (accepted)"
        ),
    )
    accepted: bool = False

    @property
    def errors(self) -> list[LeanMessage]:
        """The error messages."""
        return [m for m in self.messages if m.is_error]

    @property
    def has_sorry_warning(self) -> bool:
        """True when Lean warned that a declaration uses ``sorry`` (either quoting style) or listed sorries."""
        return bool(self.sorries) or any(is_sorry_warning(m.data) for m in self.messages)

    def flags(self) -> dict[str, bool | None]:
        """Every verdict flag by name (for printing and JSON)."""
        return {
            "screen_ok": self.screen_ok,
            "statement_respliced": self.statement_respliced,
            "target_declared": self.target_declared,
            "no_errors": self.no_errors,
            "no_sorry": self.no_sorry,
            "no_exit": self.no_exit,
            "whole_command_checked": self.whole_command_checked,
            "axioms_allowed": self.axioms_allowed,
            "lean4checker_ok": self.lean4checker_ok,
            "sandboxed": self.sandboxed,
        }

    def reasons(self) -> list[str]:
        """Why the result is not accepted, in words (empty when accepted)."""
        if self.accepted:
            return []
        out: list[str] = []
        if self.status != "ok" and self.status != "screened":
            out.append(f"{self.status}: {self.error or 'no verdict from Lean'}")
        out.extend(self.violations)
        if self.final_check == "failed" and self.decided_by:
            out.append(f"final check ({self.decided_by}) failed")
        for name, value in self.flags().items():
            if value is False and name not in ("screen_ok", "sandboxed", "lean4checker_ok"):
                out.append(f"{name} failed")
        if self.lean4checker_ok is False:
            out.append("lean4checker rejected the environment")
        if self.disallowed_axioms:
            out.append("disallowed axioms: " + ", ".join(self.disallowed_axioms))
        out.extend(m.short() for m in self.errors[:3])
        return out or ["not checked by the acceptance rule"]


@runtime_checkable
class Verifier(Protocol):
    """Any Lean backend: checks whole snippets (header included), owns its processes or connections.

    Use it as ``async with verifier: results = await verifier.check(snippets, timeout)``. Results come back in the
    order of ``snippets``; a snippet that could not be checked gets a result with ``status`` ``"timeout"``,
    ``"crash"`` or ``"error"`` rather than an exception, so one bad proof never loses a batch.
    """

    name: str
    sandboxed: bool

    async def check(self, snippets: Sequence[Snippet], timeout: float | None = None) -> list[CheckResult]:  # noqa: ASYNC109
        """Check every snippet; ``timeout`` is per snippet in seconds (``None``: the backend's default)."""
        ...

    async def aclose(self) -> None:
        """Release processes and connections."""
        ...

    async def __aenter__(self) -> Verifier: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...
