"""Run the real kimina-client (0.2.1) against a running ``malot serve`` (manual check; CI cannot import the client).

kimina-client 0.2.1 fails to import on Python 3.11 with pydantic 2.14 (``typing.TypedDict``) and needs
``pygments`` without declaring it, so this script installs a one-line shim before importing it. In a scratch
virtual environment (not malot's)::

    python -m venv /tmp/kimina && /tmp/kimina/bin/pip install kimina-client==0.2.1 pygments
    malot serve --port 8000 --lean PATH/TO/lean --model script:FILE &     # the prelude Lean fixture works
    /tmp/kimina/bin/python tests/server/kimina_client_interop.py http://127.0.0.1:8000

It checks a correct and a wrong prelude theorem through ``AsyncKiminaClient.check`` and ``KiminaClient.check`` and
prints the client's own status analysis (expected: valid, lean_error, valid).
"""

from __future__ import annotations

import asyncio
import sys
import typing

import typing_extensions

typing.TypedDict = typing_extensions.TypedDict  # type: ignore[misc]  # the shim kimina-client 0.2.1 needs on 3.11

from kimina_client import AsyncKiminaClient, KiminaClient  # type: ignore[import-not-found]  # noqa: E402
from kimina_client.models import Snippet  # type: ignore[import-not-found]  # noqa: E402

GOOD = """prelude
inductive MyNat where
  | zero : MyNat
  | succ : MyNat → MyNat
inductive Eq' {α : Sort u} (a : α) : α → Prop where
  | refl : Eq' a a
theorem zero_refl : Eq' MyNat.zero MyNat.zero := Eq'.refl
"""
BAD = GOOD.replace("Eq' MyNat.zero MyNat.zero :=", "Eq' MyNat.zero (MyNat.succ MyNat.zero) :=")


async def main(url: str) -> list[str]:
    """Check GOOD and BAD with the async client and GOOD with the sync one; the statuses in that order."""
    client = AsyncKiminaClient(api_url=url, n_retries=1)
    try:
        reply = await client.check([Snippet(id="good", code=GOOD), Snippet(id="bad", code=BAD)], show_progress=False)
    finally:
        await client.close()
    statuses = [r.analyze().status.value for r in reply.results]
    statuses.append(
        KiminaClient(api_url=url, n_retries=1).check(GOOD, show_progress=False).results[0].analyze().status.value
    )
    return statuses


if __name__ == "__main__":
    found = asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"))
    print(" ".join(found))
    sys.exit(0 if found == ["valid", "lean_error", "valid"] else 1)
