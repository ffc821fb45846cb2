"""malot.lean: every way malot talks to Lean 4, and the one rule that decides whether a proof counts.

- :mod:`malot.lean.base`: :class:`Snippet`, :class:`LeanMessage`, :class:`CheckResult`, the :class:`Verifier`
  protocol.
- :mod:`malot.lean.acceptance`: :class:`TargetTheorem`, :class:`AcceptanceRule`, :func:`screen`,
  :func:`verify_candidate`.
- Backends: :mod:`malot.lean.file_backend` (``lean --json``), :mod:`malot.lean.repl` (REPL processes and pool),
  :mod:`malot.lean.kimina` (Kimina Lean Server over HTTP). :func:`load_verifier` picks one from the settings.
"""

from __future__ import annotations

from malot.lean.acceptance import (
    AcceptanceRule,
    ScreenResult,
    TargetTheorem,
    screen,
    verify_candidate,
    verify_candidates,
)
from malot.lean.base import CheckResult, LeanMessage, Snippet, Verifier
from malot.lean.select import describe_choice, load_verifier

__all__ = [
    "AcceptanceRule",
    "CheckResult",
    "LeanMessage",
    "ScreenResult",
    "Snippet",
    "TargetTheorem",
    "Verifier",
    "describe_choice",
    "load_verifier",
    "screen",
    "verify_candidate",
    "verify_candidates",
]
