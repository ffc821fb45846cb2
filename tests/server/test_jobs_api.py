"""The HTTP API's job mechanics through httpx's ASGI transport: submit, stream, result, cancel, 429, restart, auth.

These tests drive the API with small job runners written here (the runner is the API's seam to the provers);
tests/server/test_prove_api.py runs the real prover with a scripted LLM and the real Lean 4.35.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from malot.errors import BackendUnavailableError, DatasetError, LeanError, MalotError
from malot.lean.base import CheckResult, LeanMessage, Position
from malot.server.app import create_app
from malot.server.jobs import EventSink, JobOutcome
from malot.server.models import ProveJobRequest, VerifyRequest, VerifyResponse


async def quick_runner(request: ProveJobRequest, emit: EventSink) -> JobOutcome:
    emit("attempt", {"sample": 0})
    await asyncio.sleep(0.01)
    emit("verdict", {"sample": 0, "accepted": True})
    return JobOutcome("proved", {"proof": f"proof of {request.statement}"})


class FakeLean:
    """A stand-in for the Lean side of the verify endpoints (the real one is tested in test_prove_api.py): a proof
    is accepted when it has no ``sorry``; ``calls`` records each batch it was handed."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    async def verify(self, request: VerifyRequest) -> VerifyResponse:
        ok = "sorry" not in (request.code or request.proof or "")
        return VerifyResponse(accepted=ok, result={"accepted": ok, "messages": []})

    async def verify_codes(self, codes: Sequence[str], timeout: float) -> list[VerifyResponse | MalotError]:  # noqa: ASYNC109
        self.calls.append(list(codes))
        return [
            DatasetError("no theorem found") if "theorem" not in code else await self.verify(VerifyRequest(code=code))
            for code in codes
        ]

    async def check(self, snippets: Sequence[tuple[str, str]], timeout: float | None) -> list[CheckResult]:  # noqa: ASYNC109
        self.calls.append([code for _, code in snippets])
        return [
            CheckResult(id=sid, status="timeout", error="Lean timed out after 1s")
            if "loop" in code
            else CheckResult(id=sid, messages=[LeanMessage(severity="info", pos=Position(line=1, column=0), data=code)])
            for sid, code in snippets
        ]


fake_verify = FakeLean()


class _App:
    def __init__(self, app: Any, *, raise_app_exceptions: bool = True) -> None:
        self.app = app
        self.raise_app_exceptions = raise_app_exceptions

    async def __aenter__(self) -> httpx.AsyncClient:
        self._lifespan = self.app.router.lifespan_context(self.app)
        await self._lifespan.__aenter__()
        transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=self.raise_app_exceptions)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://malot.test")
        return self.client

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()
        await self._lifespan.__aexit__(None, None, None)


async def _wait_done(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    for _ in range(500):
        view: dict[str, Any] = (await client.get(f"/v1/jobs/{job_id}")).json()
        if view["status"] not in ("queued", "running"):
            return view
        await asyncio.sleep(0.01)
    raise AssertionError(f"job {job_id} did not finish")


async def _sse(client: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    events = []
    async with client.stream("GET", url, headers=headers) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        block: dict[str, Any] = {}
        async for line in response.aiter_lines():
            if not line:
                if block:
                    events.append(block)
                block = {}
                continue
            key, _, value = line.partition(": ")
            block[key] = json.loads(value) if key == "data" else value
    return events


async def test_submit_stream_and_result() -> None:
    async with _App(create_app(runner=quick_runner, lean=fake_verify)) as client:
        reply = await client.post("/v1/jobs", json={"statement": "theorem t : True := by"})
        assert reply.status_code == 202
        job = reply.json()
        events = await _sse(client, job["events_url"])
        assert [e["event"] for e in events] == ["queued", "started", "attempt", "verdict", "finished"]
        assert events[-1]["data"]["status"] == "proved"
        assert [int(e["id"]) for e in events] == [1, 2, 3, 4, 5]
        view = (await client.get(job["result_url"])).json()
        assert view["status"] == "proved" and view["result"]["proof"] == "proof of theorem t : True := by"
        resumed = await _sse(client, job["events_url"], headers={"Last-Event-ID": "3"})
        assert [e["event"] for e in resumed] == ["verdict", "finished"]


async def test_cancel_a_running_job() -> None:
    started = asyncio.Event()

    async def slow_runner(request: ProveJobRequest, emit: EventSink) -> JobOutcome:
        started.set()
        await asyncio.sleep(60)
        return JobOutcome("proved")

    async with _App(create_app(runner=slow_runner, lean=fake_verify)) as client:
        job = (await client.post("/v1/jobs", json={"problem": "minif2f:mathd_algebra_10"})).json()
        await asyncio.wait_for(started.wait(), 5)
        reply = await client.post(f"/v1/jobs/{job['job_id']}/cancel")
        assert reply.status_code == 200
        view = await _wait_done(client, job["job_id"])
        assert view["status"] == "cancelled"
        events = await _sse(client, job["events_url"])
        assert events[-1]["data"] == {"status": "cancelled"}


async def test_full_queue_answers_429_with_retry_after() -> None:
    gate = asyncio.Event()

    async def blocked(request: ProveJobRequest, emit: EventSink) -> JobOutcome:
        await gate.wait()
        return JobOutcome("not_proved")

    async with _App(create_app(runner=blocked, lean=fake_verify, queue_size=3, workers=1)) as client:
        codes = []
        for _ in range(8):
            codes.append((await client.post("/v1/jobs", json={"statement": "theorem t : True := by"})).status_code)
            await asyncio.sleep(0)
        # one job runs, three wait, the rest are refused
        assert codes.count(202) == 4 and codes.count(429) == 4
        refused = await client.post("/v1/jobs", json={"statement": "theorem t : True := by"})
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        assert "queue is full" in refused.json()["error"]
        gate.set()


async def test_bad_input_gets_clear_4xx() -> None:
    async with _App(create_app(runner=quick_runner, lean=fake_verify)) as client:
        bad_json = await client.post("/v1/jobs", content=b"{not json", headers={"content-type": "application/json"})
        assert bad_json.status_code == 400 and "not valid JSON" in bad_json.json()["error"]
        huge = await client.post("/v1/jobs", json={"statement": "x" * 30_000})
        assert huge.status_code == 413 and "statement is too long" in huge.json()["error"]
        strategy = await client.post("/v1/jobs", json={"statement": "theorem t : True := by", "strategy": "magic"})
        assert strategy.status_code == 422
        assert "unknown strategy 'magic'; strategies: " in strategy.json()["error"]
        assert "ma-lot" in strategy.json()["error"] and "whole-proof" in strategy.json()["error"]
        budget = await client.post("/v1/jobs", json={"statement": "theorem t : True := by", "samples": 0})
        assert budget.status_code == 422 and "samples" in budget.json()["error"]
        both = await client.post("/v1/jobs", json={})
        assert both.status_code == 422 and "exactly one of 'statement' or 'problem'" in both.json()["error"]
        unknown = await client.get("/v1/jobs/nope")
        assert unknown.status_code == 404 and "no job 'nope'" in unknown.json()["error"]


async def test_api_keys_protect_everything_but_health(tmp_path: Path) -> None:
    from malot.server.app import load_api_keys

    tokens = tmp_path / "tokens"
    tokens.write_text("# deploy keys\nsecret-1\n")
    app = create_app(runner=quick_runner, lean=fake_verify, api_keys=load_api_keys(tokens))
    async with _App(app) as client:
        assert (await client.get("/health")).status_code == 200
        assert (await client.post("/v1/jobs", json={"statement": "theorem t : True := by"})).status_code == 401
        ok = await client.post(
            "/v1/jobs", json={"statement": "theorem t : True := by"}, headers={"Authorization": "Bearer secret-1"}
        )
        assert ok.status_code == 202


async def test_jobs_survive_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite"
    gate = asyncio.Event()
    started = asyncio.Event()

    async def blocked(request: ProveJobRequest, emit: EventSink) -> JobOutcome:
        started.set()
        await gate.wait()
        return JobOutcome("proved")

    async with _App(create_app(runner=blocked, lean=fake_verify, store_path=db, workers=1)) as client:
        ids = [
            (await client.post("/v1/jobs", json={"statement": f"theorem s{i} : True := by"})).json()["job_id"]
            for i in range(5)
        ]
        await asyncio.wait_for(started.wait(), 30)  # one job is running when the server stops
    # a new server on the same store resumes every job
    async with _App(create_app(runner=quick_runner, lean=fake_verify, store_path=db, workers=2)) as client:
        views = [await _wait_done(client, job_id) for job_id in ids]
        assert [v["status"] for v in views] == ["proved"] * 5
        events = await _sse(client, f"/v1/jobs/{ids[0]}/events")
        assert "requeued" in [e["event"] for e in events]


async def test_kimina_verify_shape_and_openapi() -> None:
    async with _App(create_app(runner=quick_runner, lean=fake_verify)) as client:
        reply = await client.post(
            "/verify",
            json={
                "codes": [
                    {"custom_id": "a", "proof": "theorem x : True := trivial"},
                    {"custom_id": "b", "code": "theorem y : False := sorry"},
                ],
                "timeout": 30,
                "infotree_type": "original",
                "disable_cache": True,
            },
        )
        assert reply.status_code == 200
        results = reply.json()["results"]
        assert [r["custom_id"] for r in results] == ["a", "b"]
        assert results[0]["response"]["accepted"] is True and results[1]["response"]["accepted"] is False
        spec = (await client.get("/openapi.json")).json()
        assert {
            "/v1/jobs",
            "/v1/jobs/{job_id}",
            "/v1/jobs/{job_id}/events",
            "/v1/jobs/{job_id}/cancel",
            "/v1/verify",
            "/verify",
            "/api/check",
            "/health",
            "/version",
        } <= spec["paths"].keys()


async def test_storage_runs_off_the_event_loop(tmp_path: Path) -> None:
    """While another connection holds SQLite's write lock, a submission waits for its commit on the storage
    thread and the server keeps answering; the 202 comes only once the job is committed."""
    db = tmp_path / "jobs.sqlite"
    async with _App(create_app(runner=quick_runner, lean=fake_verify, store_path=db)) as client:
        blocker = sqlite3.connect(db, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        submit = asyncio.create_task(client.post("/v1/jobs", json={"statement": "theorem t : True := by"}))
        for _ in range(5):
            assert (await client.get("/health")).status_code == 200
        assert not submit.done()
        assert blocker.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 0
        blocker.execute("COMMIT")
        reply = await submit
        assert reply.status_code == 202
        stored = blocker.execute("SELECT status FROM jobs WHERE id = ?", (reply.json()["job_id"],)).fetchone()
        assert stored is not None  # committed before the 202
        assert (await _wait_done(client, reply.json()["job_id"]))["status"] == "proved"
        blocker.close()


async def test_per_job_state_is_dropped_when_jobs_finish() -> None:
    """Memory held per job (event numbering, cancel requests) exists only while a job is queued or running; the
    durations behind Retry-After are a fixed window."""
    from malot.server.jobs import DURATION_WINDOW

    gate = asyncio.Event()
    holding = asyncio.Event()

    async def gated(request: ProveJobRequest, emit: EventSink) -> JobOutcome:
        emit("attempt", {})
        if "hold" in (request.statement or ""):
            holding.set()
            await gate.wait()
        return JobOutcome("proved")

    app = create_app(runner=gated, lean=fake_verify, queue_size=4, workers=1)
    manager = app.state.manager
    async with _App(app) as client:
        held = (await client.post("/v1/jobs", json={"statement": "theorem hold : True := by"})).json()["job_id"]
        await asyncio.wait_for(holding.wait(), 30)
        queued = [
            (await client.post("/v1/jobs", json={"statement": "theorem q : True := by"})).json() for _ in range(3)
        ]
        await client.post(f"/v1/jobs/{queued[0]['job_id']}/cancel")  # cancelled while queued
        await client.post(f"/v1/jobs/{held}/cancel")  # cancelled while running
        assert (await _wait_done(client, held))["status"] == "cancelled"
        for _ in range(2 * DURATION_WINDOW // 4 + 1):  # more jobs than the duration window, in queue-sized waves
            wave = [
                (await client.post("/v1/jobs", json={"statement": "theorem w : True := by"})).json() for _ in range(4)
            ]
            for job in wave:
                assert (await _wait_done(client, job["job_id"]))["status"] == "proved"
        for job in queued:
            await _wait_done(client, job["job_id"])
        tracked = manager.tracked()
        assert tracked["durations"] == DURATION_WINDOW
        assert {k: v for k, v in tracked.items() if k != "durations"} == {
            "sequence_numbers": 0,
            "cancel_requests": 0,
            "running": 0,
            "subscribed_jobs": 0,
        }
        gate.set()


async def test_one_error_shape_for_every_error() -> None:
    """FastAPI's own 404/405 and the 401 carry ``{"error": ...}`` like every other error; bad problems are 422."""
    async with _App(create_app(runner=quick_runner, lean=fake_verify)) as client:
        missing = await client.get("/no/such/route")
        assert missing.status_code == 404 and missing.json() == {"error": "Not Found"}
        method = await client.get("/v1/jobs")
        assert method.status_code == 405 and method.json() == {"error": "Method Not Allowed"}
        assert "POST" in method.headers["allow"]
        unknown = await client.post("/v1/jobs", json={"problem": "minif2f:no_such_problem"})
        assert unknown.status_code == 422
        assert "no MiniF2F problem named 'no_such_problem'" in unknown.json()["error"]
        no_theorem = await client.post("/v1/jobs", json={"statement": "1 + 1 = 2"})
        assert no_theorem.status_code == 422
        assert "has no 'theorem', 'lemma' or 'example' declaration" in no_theorem.json()["error"]
        assert "detail" not in no_theorem.json()


async def test_api_keys_are_compared_in_constant_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every key is compared with hmac.compare_digest (no early exit on the first mismatch or match); a refused
    request gets the common error shape and WWW-Authenticate."""
    from malot.server import app as app_module
    from malot.server.app import api_key_matches, load_api_keys

    keys = frozenset({"key-one", "key-two", "key-three"})
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(app_module.hmac, "compare_digest", counting)
    assert api_key_matches("key-two", keys) and not api_key_matches("key-tw", keys)
    assert len(compared) == 2 * len(keys)
    tokens = tmp_path / "tokens"
    tokens.write_text("key-one\nkey-two\n")
    async with _App(create_app(runner=quick_runner, lean=fake_verify, api_keys=load_api_keys(tokens))) as client:
        refused = await client.get("/v1/jobs/x", headers={"Authorization": "Bearer nope"})
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert refused.json() == {"error": "missing or wrong API key: send 'Authorization: Bearer <key>'"}


class FailingLean(FakeLean):
    """Raises ``error`` from every verify call."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    async def verify(self, request: VerifyRequest) -> VerifyResponse:
        raise self.error


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (DatasetError("no theorem found in the Lean source"), 422),
        (BackendUnavailableError("the server has no Lean verifier"), 503),
        (LeanError("the Lean process crashed"), 502),
        (MalotError("something inside malot broke"), 500),
        (RuntimeError("a bug"), 500),
    ],
)
async def test_client_errors_are_4xx_and_server_faults_5xx(error: Exception, status: int) -> None:
    app = create_app(runner=quick_runner, lean=FailingLean(error))
    async with _App(app, raise_app_exceptions=False) as client:
        reply = await client.post("/v1/verify", json={"code": "theorem t : True := trivial"})
        assert reply.status_code == status
        assert str(error) in reply.json()["error"]


async def test_job_token_budget_and_per_generation_max_tokens_reach_the_runner() -> None:
    seen: list[ProveJobRequest] = []

    async def recording(request: ProveJobRequest, emit: EventSink) -> JobOutcome:
        seen.append(request)
        return JobOutcome("not_proved")

    async with _App(create_app(runner=recording, lean=fake_verify)) as client:
        body = {"statement": "theorem t : True := by", "max_tokens": 512, "token_budget": 20_000}
        job = (await client.post("/v1/jobs", json=body)).json()
        view = await _wait_done(client, job["job_id"])
        assert view["request"]["max_tokens"] == 512 and view["request"]["token_budget"] == 20_000
        bad = await client.post("/v1/jobs", json={"statement": "theorem t : True := by", "token_budget": 0})
        assert bad.status_code == 422 and "token_budget" in bad.json()["error"]
    assert (seen[0].max_tokens, seen[0].token_budget) == (512, 20_000)


async def test_kimina_api_check_shape_and_one_batch() -> None:
    """``/api/check`` in the shapes kimina-client 0.2.1 sends and parses (see test_kimina_client_shapes.py), the
    whole batch handed to the verifier in one call; a timeout is an ``error`` that says "timed out"."""
    lean = FakeLean()
    async with _App(create_app(runner=quick_runner, lean=lean)) as client:
        body = {
            "snippets": [{"id": "a", "code": "#check Nat"}, {"id": "b", "code": "loop"}],
            "timeout": 20,
            "debug": False,
            "reuse": True,
            "infotree": None,
        }
        reply = await client.post("/api/check", json=body)
        assert reply.status_code == 200
        a, b = reply.json()["results"]
        assert a["id"] == "a" and a["error"] is None and a["diagnostics"] is None
        assert a["response"] == {
            "messages": [{"severity": "info", "pos": {"line": 1, "column": 0}, "endPos": None, "data": "#check Nat"}]
        }
        assert b["id"] == "b" and b["response"] is None and "timed out" in b["error"]
        assert lean.calls == [["#check Nat", "loop"]]
        duplicate = await client.post("/api/check", json={"snippets": [{"id": "x", "code": "1"}] * 2})
        assert duplicate.status_code == 422 and "unique" in duplicate.json()["error"]
        lean.calls.clear()
        legacy = await client.post(
            "/verify",
            json={
                "codes": [
                    {"custom_id": 1, "proof": "theorem x : True := trivial"},
                    {"custom_id": "no-code"},
                    {"custom_id": "c", "code": "def f := 1"},
                ]
            },
        )
        results = legacy.json()["results"]
        assert [r["custom_id"] for r in results] == [1, "no-code", "c"]
        assert results[0]["response"]["accepted"] is True
        assert results[1]["error"] == "give 'proof' or 'code'" and "no theorem" in results[2]["error"]
        assert lean.calls == [["theorem x : True := trivial", "def f := 1"]]  # one batch
