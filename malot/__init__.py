"""malot: a plugin-based async multi-agent framework for formal theorem proving in Lean 4 with LLM agents.

The stable Python API (pinned by a test):

* proving: :func:`prove` / :func:`prove_sync`, :class:`Prover` (an async context manager to embed in an app),
  :class:`ProofResult`, :class:`Problem`;
* verifying: :func:`verify` / :func:`verify_sync`, :class:`Verifier`, :class:`CheckResult`,
  :class:`AcceptanceRule`, :class:`TargetTheorem`, :func:`load_verifier`;
* models: :func:`load_llm`; configuration: :class:`Settings`, :func:`load_settings`; errors: :class:`MalotError`.

``import malot`` is light: names load their modules on first use, and no model library is imported.
Subpackages: :mod:`malot.agents` (the async core), :mod:`malot.llm`, :mod:`malot.lean`, :mod:`malot.provers`,
:mod:`malot.retrieval`, :mod:`malot.tools`, :mod:`malot.eval`, :mod:`malot.server`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from malot._version import __version__
from malot.config import Settings, load_settings
from malot.errors import MalotError

if TYPE_CHECKING:
    from malot.api import prove, prove_sync, verify, verify_sync
    from malot.lean.acceptance import AcceptanceRule, TargetTheorem
    from malot.lean.base import CheckResult, Verifier
    from malot.lean.select import load_verifier
    from malot.llm import load_llm
    from malot.provers.api import ProofResult, Prover
    from malot.provers.problem import Problem

__all__ = [
    "AcceptanceRule",
    "CheckResult",
    "MalotError",
    "Problem",
    "ProofResult",
    "Prover",
    "Settings",
    "TargetTheorem",
    "Verifier",
    "__version__",
    "load_llm",
    "load_settings",
    "load_verifier",
    "prove",
    "prove_sync",
    "verify",
    "verify_sync",
]

_LAZY: dict[str, str] = {
    "prove": "malot.api",
    "prove_sync": "malot.api",
    "verify": "malot.api",
    "verify_sync": "malot.api",
    "Prover": "malot.provers.api",
    "ProofResult": "malot.provers.api",
    "Problem": "malot.provers.problem",
    "Verifier": "malot.lean.base",
    "CheckResult": "malot.lean.base",
    "AcceptanceRule": "malot.lean.acceptance",
    "TargetTheorem": "malot.lean.acceptance",
    "load_verifier": "malot.lean.select",
    "load_llm": "malot.llm",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'malot' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
