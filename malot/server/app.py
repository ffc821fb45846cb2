"""The HTTP API (FastAPI): submit proving jobs, follow them as server-sent events, cancel them, verify proofs.

Endpoints (OpenAPI docs at ``/docs``):

* ``POST /v1/jobs`` submit a job -> ``202`` with its id, or ``429`` with ``Retry-After`` when the queue is full;
* ``GET /v1/jobs/{id}`` status and result; ``GET /v1/jobs/{id}/events`` server-sent events (attempts, verdicts, the
  final proof; ``Last-Event-ID`` resumes a stream); ``POST /v1/jobs/{id}/cancel``;
* ``POST /v1/verify`` the acceptance rule on one proof; ``POST /verify`` the same in Kimina Lean Server's shapes;
* ``GET /health``, ``GET /version``.

With a token file, every endpoint but ``/health`` and ``/version`` needs ``Authorization: Bearer TOKEN``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from malot._version import __version__
from malot.errors import MalotError
from malot.server.jobs import JobManager, JobRunner, QueueFullError, UnknownJobError
from malot.server.models import (
    ErrorBody,
    JobView,
    KiminaResult,
    KiminaVerifyRequest,
    KiminaVerifyResponse,
    ProveJobRequest,
    SubmitResponse,
    VerifyRequest,
    VerifyResponse,
)
from malot.server.store import JobStore

__all__ = ["VerifyFn", "create_app", "load_api_keys"]

VerifyFn = Callable[[VerifyRequest], Awaitable[VerifyResponse]]
"""Checks one proof; the default drives the configured :mod:`malot.lean` verifier."""


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
    verify: VerifyFn,
    store_path: str | Path = ":memory:",
    queue_size: int = 50,
    workers: int = 4,
    api_keys: frozenset[str] | None = None,
    on_startup: Callable[[], Awaitable[Any]] | None = None,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
) -> Any:
    """Build the FastAPI application. ``runner`` runs proving jobs; ``verify`` checks single proofs;
    ``on_startup`` / ``on_shutdown`` open and close what they use (e.g. a :class:`ProverRuntime`)."""
    from fastapi import Depends, FastAPI, Header, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, StreamingResponse

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

    @app.exception_handler(QueueFullError)
    async def queue_full(request: Request, exc: QueueFullError) -> Any:
        return error(429, str(exc), headers={"Retry-After": str(exc.retry_after)})

    @app.exception_handler(UnknownJobError)
    async def unknown_job(request: Request, exc: UnknownJobError) -> Any:
        return error(404, str(exc))

    @app.exception_handler(MalotError)
    async def malot_error(request: Request, exc: MalotError) -> Any:
        return error(400, str(exc))

    async def authorized(authorization: str | None = Header(None)) -> None:
        if api_keys is None:
            return
        token = authorization.removeprefix("Bearer ").strip() if authorization else ""
        if token not in api_keys:
            from fastapi import HTTPException

            raise HTTPException(401, "missing or wrong API key: send 'Authorization: Bearer <key>'")

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
        """Submit a proving job; answers 429 with Retry-After when the queue is full."""
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
        return await verify(request)

    @app.post("/verify", response_model=KiminaVerifyResponse, dependencies=auth, tags=["verify"])
    async def verify_kimina(request: KiminaVerifyRequest) -> KiminaVerifyResponse:
        """Kimina Lean Server's ``/verify``: ``{codes: [{custom_id, proof|code}]}`` -> ``{results: [...]}``."""
        results = []
        for item in request.codes:
            code = item.proof if item.proof is not None else item.code
            if code is None:
                results.append(KiminaResult(custom_id=item.custom_id, error="give 'proof' or 'code'"))
                continue
            try:
                verdict = await verify(VerifyRequest(code=code, timeout=request.timeout, always_check=True))
            except MalotError as exc:
                results.append(KiminaResult(custom_id=item.custom_id, error=str(exc)))
                continue
            results.append(KiminaResult(custom_id=item.custom_id, response=verdict.result))
        return KiminaVerifyResponse(results=results)

    return app
