"""The stable Python API behind ``import malot``: proving and verifying, in async and sync forms.

::

    import malot

    result = await malot.prove("theorem t : 1 + 1 = 2 := by", model="http://127.0.0.1:8000/v1#prover")
    verdict = await malot.verify(header="import Mathlib\\n", statement="theorem t : 1 + 1 = 2 := by", proof="norm_num")

    result = malot.prove_sync("minif2f:mathd_algebra_10")      # from code that is not async

Everything here is re-exported by :mod:`malot` and pinned by a test; heavy modules load on first use.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from malot.config import Settings, load_settings
from malot.errors import MalotError

if TYPE_CHECKING:
    from malot.lean.acceptance import AcceptanceRule
    from malot.lean.base import CheckResult, Verifier
    from malot.provers.api import ProofResult

__all__ = ["prove", "prove_sync", "verify", "verify_sync"]

T = TypeVar("T")


async def prove(statement: Any, **options: Any) -> ProofResult:
    """Prove a Lean statement (string, ``minif2f:NAME`` or :class:`malot.Problem`); see :func:`malot.provers.prove`
    for the options (``settings``, ``model``, ``lean``, ``strategy``, ``samples``, ``rounds``, ``llm``,
    ``verifier``, ``demos``, ``trace``)."""
    from malot.provers.api import prove as _prove

    return await _prove(statement, **options)


async def verify(
    code: str | None = None,
    *,
    header: str | None = None,
    statement: str | None = None,
    proof: str | None = None,
    theorem: str | None = None,
    settings: Settings | None = None,
    lean: str | Path | None = None,
    verifier: Verifier | None = None,
    rule: AcceptanceRule | None = None,
    timeout_s: float | None = None,
) -> CheckResult:
    """Check a proof with malot's acceptance rule and return the :class:`malot.CheckResult` with every flag.

    Give a whole Lean file as ``code`` (the target is ``theorem``, default the last one), or ``statement`` and
    ``proof`` with an optional trusted ``header``. ``verifier`` is used as given (not closed); otherwise one is
    built from ``settings`` (``lean`` overrides the ``lean`` executable).
    """
    from malot.lean.acceptance import AcceptanceRule, TargetTheorem, split_source, verify_candidate
    from malot.lean.select import load_verifier

    if code is not None:
        if statement is not None or proof is not None:
            raise MalotError("give either code or statement and proof, not both")
        target, candidate = split_source(code, theorem)
    elif statement is not None and proof is not None:
        target = TargetTheorem(header=header or "", statement=statement)
        candidate = proof
    else:
        raise MalotError("nothing to verify", hint="pass code=..., or statement=... and proof=...")
    if settings is None:
        overrides: dict[str, Any] = {}
        if lean is not None:
            overrides = {"lean.lean_path": str(lean), "lean.backend": "file"}
        settings = load_settings(overrides=overrides)
    rule = rule or AcceptanceRule.from_settings(settings.lean)
    timeout = timeout_s if timeout_s is not None else settings.lean.timeout_s
    if verifier is not None:
        return await verify_candidate(verifier, target, candidate, rule, timeout)
    async with load_verifier(settings.lean) as own:
        return await verify_candidate(own, target, candidate, rule, timeout)


def prove_sync(statement: Any, **options: Any) -> ProofResult:
    """:func:`prove` for code that is not async (runs its own event loop)."""
    return _run(prove(statement, **options))


def verify_sync(code: str | None = None, **options: Any) -> CheckResult:
    """:func:`verify` for code that is not async (runs its own event loop)."""
    return _run(verify(code, **options))


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    coro.close()
    raise MalotError(
        "the sync form was called inside a running event loop", hint="use 'await malot.prove(...)' there instead"
    )
