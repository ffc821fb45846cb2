"""Client for the Kimina Lean Server (github.com/project-numina/kimina-lean-server), over httpx.

For users who verify on a cluster: the server runs REPL pools on many machines and malot sends it snippets. Two
endpoints are supported: ``POST /api/check`` (``{snippets: [{id, code}], timeout, debug, reuse, infotree}`` ->
``{results: [{id, time, error | response, diagnostics}]}``) and the older ``POST /verify``
(``{codes: [{custom_id, proof}], timeout, infotree_type, disable_cache}`` -> ``{results: [{custom_id, error,
response}]}``). ``response`` is a REPL command response (messages, sorries, env) or a REPL error ``{message}``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from malot.errors import BackendUnavailableError, VerifierError
from malot.lean.base import CheckResult, Snippet, SorryInfo
from malot.lean.messages import message_from_json
from malot.resources import AsyncResource

if TYPE_CHECKING:
    from malot.lean.final_check import FinalChecker

__all__ = [
    "KiminaCheckRequest",
    "KiminaCheckResponse",
    "KiminaResult",
    "KiminaVerifier",
    "KiminaVerifyRequest",
    "KiminaVerifyResponse",
]


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class KiminaSnippet(_Wire):
    """A snippet as ``/api/check`` expects it."""

    id: str
    code: str


class KiminaCheckRequest(_Wire):
    """Body of ``POST /api/check``."""

    snippets: list[KiminaSnippet]
    timeout: int = 60
    debug: bool = False
    reuse: bool = True
    infotree: str | None = None


class KiminaResult(_Wire):
    """One result of ``/api/check`` (``id``) or ``/verify`` (``custom_id``)."""

    id: str | None = None
    custom_id: str | None = None
    time: float | None = None
    error: str | None = None
    response: dict[str, Any] | None = None
    diagnostics: dict[str, Any] | None = None


class KiminaCheckResponse(_Wire):
    """Body of the ``/api/check`` answer."""

    results: list[KiminaResult]


class KiminaCode(_Wire):
    """A code item of ``/verify``."""

    custom_id: str
    proof: str


class KiminaVerifyRequest(_Wire):
    """Body of ``POST /verify`` (the backward-compatible endpoint)."""

    codes: list[KiminaCode]
    timeout: int = 60
    infotree_type: str | None = None
    disable_cache: bool = False


class KiminaVerifyResponse(_Wire):
    """Body of the ``/verify`` answer."""

    results: list[KiminaResult] = Field(default_factory=list)


def result_from_kimina(sid: str, item: KiminaResult | None, elapsed: float) -> CheckResult:
    """A :class:`CheckResult` from one Kimina result (missing, server error, REPL error or command response)."""
    if item is None:
        return CheckResult(id=sid, status="error", error="the Kimina server returned no result for this id")
    took = item.time if item.time is not None else elapsed
    if item.error:
        status: Literal["timeout", "error"] = "timeout" if "timed out" in item.error.lower() else "error"
        return CheckResult(id=sid, status=status, error=item.error, time_s=took, backend="kimina")
    response = item.response or {}
    if "message" in response and "messages" not in response and "env" not in response:
        error = f"REPL error: {response['message']}"
        return CheckResult(id=sid, status="error", error=error, time_s=took, backend="kimina")
    messages = [message_from_json(m) for m in response.get("messages") or [] if isinstance(m, dict)]
    sorries = [SorryInfo.model_validate(s) for s in response.get("sorries") or [] if isinstance(s, dict)]
    # Kimina's diagnostics (cpu_max, memory_max) are peaks, not CPU-seconds: cpu_s stays unknown.
    return CheckResult(id=sid, status="ok", messages=messages, sorries=sorries, time_s=took, backend="kimina")


class KiminaVerifier(AsyncResource):
    """A :class:`~malot.lean.base.Verifier` backed by a Kimina Lean Server.

    ``endpoint`` picks ``/api/check`` (default) or the older ``/verify``; ``batch_size`` snippets go in one
    request; ``api_key`` is sent as a bearer token. ``transport`` is for tests (``httpx.MockTransport``).
    """

    name = "kimina"
    sandboxed = False
    sandbox_kind = "remote"
    #: the environment-level final check with a local Lean, where one is configured (a remote server cannot run it)
    final_checker: FinalChecker | None = None

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 300.0,
        endpoint: Literal["check", "verify"] = "check",
        batch_size: int = 32,
        api_key: str | None = None,
        reuse: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.endpoint = endpoint
        self.batch_size = batch_size
        self.reuse = reuse
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(base_url=self.url, headers=headers, transport=transport, timeout=None)

    def describe(self) -> str:
        """One line: where the server is."""
        return f"Kimina Lean Server at {self.url} ({'/api/check' if self.endpoint == 'check' else '/verify'})"

    async def aclose(self) -> None:
        """Close the HTTP connections (and the local final checker, if any)."""
        await self._client.aclose()
        if self.final_checker is not None:
            await self.final_checker.aclose()

    async def check(self, snippets: Sequence[Snippet], timeout: float | None = None) -> list[CheckResult]:  # noqa: ASYNC109
        """Send the snippets in batches; one result per snippet, in order."""
        limit = timeout or self.timeout
        out: list[CheckResult] = []
        for start in range(0, len(snippets), self.batch_size):
            out.extend(await self._batch(list(snippets[start : start + self.batch_size]), limit))
        return out

    async def _batch(self, snippets: list[Snippet], limit: float) -> list[CheckResult]:
        started = time.perf_counter()
        body: BaseModel
        if self.endpoint == "check":
            body = KiminaCheckRequest(
                snippets=[KiminaSnippet(id=s.id, code=s.code) for s in snippets],
                timeout=max(1, int(limit)),
                reuse=self.reuse,
            )
            path = "/api/check"
        else:
            body = KiminaVerifyRequest(
                codes=[KiminaCode(custom_id=s.id, proof=s.code) for s in snippets],
                timeout=max(1, int(limit)),
                disable_cache=not self.reuse,
            )
            path = "/verify"
        try:
            reply = await self._client.post(
                path, json=body.model_dump(exclude_none=True), timeout=limit * max(1, len(snippets)) + 30
            )
        except httpx.TimeoutException:
            return [CheckResult(id=s.id, status="timeout", error="the Kimina server did not answer") for s in snippets]
        except httpx.HTTPError as exc:
            raise BackendUnavailableError(
                f"cannot reach the Kimina server at {self.url}: {exc}", hint="check --kimina URL and that it runs"
            ) from exc
        if reply.status_code != 200:
            raise VerifierError(f"the Kimina server answered {reply.status_code} on {path}: {reply.text[:300]}")
        elapsed = time.perf_counter() - started
        items = KiminaVerifyResponse.model_validate(reply.json()).results
        by_id = {str(item.id if item.id is not None else item.custom_id): item for item in items}
        return [result_from_kimina(s.id, by_id.get(s.id), elapsed) for s in snippets]
