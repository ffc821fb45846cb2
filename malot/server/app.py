"""The HTTP API (FastAPI): submit proving jobs, follow them as server-sent events, cancel them, verify proofs.

Endpoints (OpenAPI docs at ``/docs``):

* ``POST /v1/jobs`` submit a job -> ``202`` with its id once the job is committed to the store, ``429`` with
  ``Retry-After`` when the queue is full, ``422`` for an invalid request (an unknown problem name included);
* ``GET /v1/jobs/{id}`` status and result; ``GET /v1/jobs/{id}/events`` server-sent events (attempts, verdicts, the
  final proof; ``Last-Event-ID`` resumes a stream); ``POST /v1/jobs/{id}/cancel``;
* ``POST /v1/verify`` the acceptance rule on one proof;
* ``POST /api/check`` Lean's raw answer in Kimina Lean Server's shapes (what ``kimina-client`` sends), and
  ``POST /verify`` Kimina's older endpoint with malot's acceptance rule; each checks its whole batch in one call
  to the verifier;
* ``GET /health``, ``GET /version``.

Every error, FastAPI's own 404/405/422 included, is ``{"error": message}`` (sometimes with ``detail``): 4xx for
the client's mistakes, 5xx for the server's (``503`` a backend is missing, ``502`` Lean or the model failed,
``500`` anything else). With a token file, every endpoint but ``/health`` and ``/version`` needs
``Authorization: Bearer TOKEN`` (compared in constant time).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from malot._version import __version__
from malot.errors import (
    BackendUnavailableError,
    CapabilityError,
    DatasetError,
    LeanError,
    LLMError,
    MalotError,
)
from malot.server.jobs import JobManager, JobRunner, QueueFullError, UnknownJobError
from malot.server.models import (
    ErrorBody,
    JobView,
    KiminaCheckRequest,
    KiminaCheckResponse,
    KiminaCheckResult,
    KiminaResult,
    KiminaVerifyRequest,
    KiminaVerifyResponse,
    ProveJobRequest,
    SubmitResponse,
    VerifyRequest,
    VerifyResponse,
)
from malot.server.store import JobStore

if TYPE_CHECKING:
    from malot.lean.base import CheckResult

__all__ = ["LeanService", "create_app", "http_status", "load_api_keys"]


class LeanService(Protocol):
    """What the verify endpoints run on; :class:`malot.server.runtime.ProverRuntime` is the real one."""

    async def verify(self, request: VerifyRequest) -> VerifyResponse:
        """Check one proof with the acceptance rule (``/v1/verify``)."""
        ...

    async def verify_codes(self, codes: Sequence[str], timeout: float) -> list[VerifyResponse | MalotError]:  # noqa: ASYNC109
        """Whole Lean files through the acceptance rule, in one verifier call; an error for a file that has no
        theorem to check (``/verify``)."""
        ...

    async def check(self, snippets: Sequence[tuple[str, str]], timeout: float | None) -> list[CheckResult]:  # noqa: ASYNC109
        """Lean's raw answer for ``(id, code)`` snippets, in one verifier call (``/api/check``)."""
        ...


#: Client mistakes among malot's errors; every other MalotError is the server's fault.
_CLIENT_ERRORS: tuple[type[MalotError], ...] = (DatasetError, CapabilityError)


def http_status(exc: MalotError) -> int:
    """The HTTP status for one of malot's errors: 422 for the client's input, 503 for a missing backend, 502 when
    Lean or the model failed, 500 otherwise."""
    if isinstance(exc, _CLIENT_ERRORS):
        return 422
    if isinstance(exc, BackendUnavailableError):
        return 503
    if isinstance(exc, LeanError | LLMError):
        return 502
    return 500


def api_key_matches(token: str, keys: frozenset[str]) -> bool:
    """Whether ``token`` is one of ``keys``, compared in constant time (every key is compared)."""
    given = token.encode()
    found = False
    for key in keys:
        found |= hmac.compare_digest(given, key.encode())
    return found


def load_api_keys(path: str | Path | None) -> frozenset[str] | None:
    """Read API keys from a token file (one per line, ``#`` comments); ``None`` when no file is given."""
    if path is None:
        return None
    p = Path(path)
    if not p.is_file():
        raise MalotError(f"token file {p} does not exist", hint="create it with one API key per line")
    keys = frozenset(
        line.strip() for line in p.read_text(encoding="utf-8").splitlines() if line.strip() and not line.startswith("#")
    )
    if not keys:
        raise MalotError(f"token file {p} holds no key", hint="write one API key per line")
    return keys


def create_app(
    *,
    runner: JobRunner,
    lean: LeanService,
    store_path: str | Path = ":memory:",
    queue_size: int = 50,
    workers: int = 4,
    api_keys: frozenset[str] | None = None,
    on_startup: Callable[[], Awaitable[Any]] | None = None,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
) -> Any:
    """Build the FastAPI application. ``runner`` runs proving jobs; ``lean`` serves the verify endpoints;
    ``on_startup`` / ``on_shutdown`` open and close what they use (e.g. a :class:`ProverRuntime`)."""
    from fastapi import Depends, FastAPI, Header, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, StreamingResponse
    from starlette.exceptions import HTTPException

    store = JobStore(store_path)
    manager = JobManager(store, runner, queue_size=queue_size, workers=workers)

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        if on_startup is not None:
            await on_startup()
        async with manager:
            yield
        if on_shutdown is not None:
            await on_shutdown()
        store.close()

    app = FastAPI(
        title="malot",
        version=__version__,
        description="Prove Lean 4 theorems with LLM agents (MA-LoT) and verify proofs with malot's acceptance rule.",
        lifespan=lifespan,
    )
    app.state.manager = manager

    def error(status: int, message: str, detail: Any = None, headers: dict[str, str] | None = None) -> Any:
        body = ErrorBody(error=message, detail=detail).model_dump(exclude_none=True)
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Any:
        problems = []
        for err in exc.errors():
            if err.get("type") == "json_invalid":
                return error(400, "the request body is not valid JSON", str(err.get("ctx", {}).get("error", "")))
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            if err.get("type") == "string_too_long":
                return error(413, f"{loc} is too long: {err['msg']}")
            problems.append(f"{loc}: {err['msg']}" if loc else err["msg"])
        return error(422, "invalid request: " + "; ".join(problems))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Any:
        # FastAPI's and Starlette's own answers (unknown route 404, wrong method 405, our 401) in the same shape
        return error(exc.status_code, str(exc.detail), headers=dict(exc.headers) if exc.headers else None)

    @app.exception_handler(QueueFullError)
    async def queue_full(request: Request, exc: QueueFullError) -> Any:
        return error(429, str(exc), headers={"Retry-After": str(exc.retry_after)})

    @app.exception_handler(UnknownJobError)
    async def unknown_job(request: Request, exc: UnknownJobError) -> Any:
        return error(404, str(exc))

    @app.exception_handler(MalotError)
    async def malot_error(request: Request, exc: MalotError) -> Any:
        return error(http_status(exc), str(exc))

    @app.exception_handler(Exception)
    async def server_fault(request: Request, exc: Exception) -> Any:
        return error(500, f"internal server error: {type(exc).__name__}: {exc}")

    async def authorized(authorization: str | None = Header(None)) -> None:
        if api_keys is None:
            return
        token = authorization.removeprefix("Bearer ").strip() if authorization else ""
        if not api_key_matches(token, api_keys):
            raise HTTPException(
                401,
                "missing or wrong API key: send 'Authorization: Bearer <key>'",
                headers={"WWW-Authenticate": "Bearer"},
            )

    auth = [Depends(authorized)]

    @app.get("/health", tags=["service"])
    async def health() -> dict[str, Any]:
        """Liveness and queue state."""
        return {"status": "ok", "queued": manager.queued, "running": manager.running, "queue_size": queue_size}

    @app.get("/version", tags=["service"])
    async def version() -> dict[str, str]:
        """The malot version."""
        return {"malot": __version__}

    @app.post("/v1/jobs", status_code=202, response_model=SubmitResponse, dependencies=auth, tags=["jobs"])
    async def submit(job: ProveJobRequest) -> SubmitResponse:
        """Submit a proving job; answers once it is committed, or 429 with Retry-After when the queue is full."""
        view = await manager.submit(job)
        return SubmitResponse(
            job_id=view.job_id,
            status=view.status,
            events_url=f"/v1/jobs/{view.job_id}/events",
            result_url=f"/v1/jobs/{view.job_id}",
        )

    @app.get("/v1/jobs/{job_id}", response_model=JobView, dependencies=auth, tags=["jobs"])
    async def job_status(job_id: str) -> JobView:
        """A job's status and, once finished, its result."""
        return await manager.get(job_id)

    @app.post("/v1/jobs/{job_id}/cancel", response_model=JobView, dependencies=auth, tags=["jobs"])
    async def cancel(job_id: str) -> JobView:
        """Cancel a queued or running job."""
        return await manager.cancel(job_id)

    @app.get("/v1/jobs/{job_id}/events", dependencies=auth, tags=["jobs"])
    async def events(job_id: str, last_event_id: str | None = Header(None)) -> Any:
        """Server-sent events of a job: ``queued``, ``started``, ``attempt``, ``verdict``, ..., ``finished``."""
        await manager.get(job_id)
        after = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0

        async def stream() -> AsyncIterator[str]:
            async for event in manager.events(job_id, after):
                yield f"id: {event.seq}\nevent: {event.type}\ndata: {json.dumps(event.data, default=str)}\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @app.post("/v1/verify", response_model=VerifyResponse, dependencies=auth, tags=["verify"])
    async def verify_one(request: VerifyRequest) -> VerifyResponse:
        """Check one proof with the acceptance rule."""
        return await lean.verify(request)

    @app.post("/api/check", response_model=KiminaCheckResponse, dependencies=auth, tags=["verify"])
    async def api_check(request: KiminaCheckRequest) -> KiminaCheckResponse:
        """Kimina Lean Server's ``/api/check``: ``{snippets: [{id, code}], timeout, ...}`` -> ``{results: [{id,
        time, error | response, diagnostics}]}``; ``response`` is Lean's answer (``messages``, ``sorries``) with no
        acceptance rule, as Kimina gives it. The batch goes to the verifier in one call."""
        timeout = float(request.timeout) if request.timeout > 0 else None
        checked = await lean.check([(s.id, s.code) for s in request.snippets], timeout)
        return KiminaCheckResponse(results=[KiminaCheckResult.from_check(r) for r in checked])

    @app.post("/verify", response_model=KiminaVerifyResponse, dependencies=auth, tags=["verify"])
    async def verify_kimina(request: KiminaVerifyRequest) -> KiminaVerifyResponse:
        """Kimina Lean Server's older ``/verify``: ``{codes: [{custom_id, proof|code}]}`` -> ``{results: [...]}``,
        each file checked with malot's acceptance rule (whole-file mode); the batch goes to the verifier in one call."""
        results: list[KiminaResult | None] = [None] * len(request.codes)
        todo: list[tuple[int, str]] = []
        for i, item in enumerate(request.codes):
            code = item.proof if item.proof is not None else item.code
            if code is None:
                results[i] = KiminaResult(custom_id=item.custom_id, error="give 'proof' or 'code'")
            else:
                todo.append((i, code))
        verdicts = await lean.verify_codes([code for _, code in todo], request.timeout) if todo else []
        for (i, _), verdict in zip(todo, verdicts, strict=True):
            cid = request.codes[i].custom_id
            if isinstance(verdict, MalotError):
                results[i] = KiminaResult(custom_id=cid, error=str(verdict))
            else:
                results[i] = KiminaResult(custom_id=cid, response=verdict.result)
        return KiminaVerifyResponse(results=[r for r in results if r is not None])

    return app
