"""The stable Python API behind ``import malot``: proving and verifying, in async and sync forms.

::

    import malot

    result = await malot.prove("theorem t : 1 + 1 = 2 := by", model="http://127.0.0.1:8000/v1#prover")
    verdict = await malot.verify(header="import Mathlib\\n", statement="theorem t : 1 + 1 = 2 := by", proof="norm_num")

    result = malot.prove_sync("minif2f:mathd_algebra_10")      # from code that is not async

Everything here is re-exported by :mod:`malot` and pinned by a test (``tests/test_public_api.py``); ``prove`` is
:func:`malot.provers.api.prove` itself. Heavy modules (model libraries, Lean) load on first use.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from malot.config import Settings, load_settings
from malot.errors import MalotError
from malot.provers.api import prove

if TYPE_CHECKING:
    from malot.lean.acceptance import AcceptanceRule
    from malot.lean.base import CheckResult, Verifier

__all__ = ["prove", "prove_sync", "verify", "verify_sync"]

T = TypeVar("T")
P = ParamSpec("P")


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


def _sync(fn: Callable[P, Coroutine[Any, Any, T]], doc: str) -> Callable[P, T]:
    """The blocking form of the coroutine function ``fn``: same signature, runs its own event loop."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        return _run(fn(*args, **kwargs))

    run.__doc__ = doc
    run.__name__ = run.__qualname__ = f"{fn.__name__}_sync"
    return run


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass  # no loop running: the normal case (the error is not chained to what the coroutine raises)
    else:
        coro.close()
        raise MalotError(
            "the sync form was called inside a running event loop", hint="use 'await malot.prove(...)' there instead"
        )
    return asyncio.run(coro)


prove_sync = _sync(prove, ":func:`prove` for code that is not async (runs its own event loop).")
verify_sync = _sync(verify, ":func:`verify` for code that is not async (runs its own event loop).")
