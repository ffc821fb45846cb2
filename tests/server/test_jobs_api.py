"""The HTTP API's job mechanics through httpx's ASGI transport: submit, stream, result, cancel, 429, restart, auth.

These tests drive the API with small job runners written here (the runner is the API's seam to the provers);
tests/server/test_prove_api.py runs the real prover with a scripted LLM and the real Lean 4.35.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx

from malot.server.app import create_app
from malot.server.jobs import EventSink, JobOutcome
from malot.server.models import ProveJobRequest, VerifyRequest, VerifyResponse


async def quick_runner(request: ProveJobRequest, emit: EventSink) -> JobOutcome:
    emit("attempt", {"sample": 0})
    await asyncio.sleep(0.01)
    emit("verdict", {"sample": 0, "accepted": True})
    return JobOutcome("proved", {"proof": f"proof of {request.statement}"})


async def fake_verify(request: VerifyRequest) -> VerifyResponse:
    ok = "sorry" not in (request.code or request.proof or "")
    return VerifyResponse(accepted=ok, result={"accepted": ok, "messages": []})


class _App:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __aenter__(self) -> httpx.AsyncClient:
        self._lifespan = self.app.router.lifespan_context(self.app)
        await self._lifespan.__aenter__()
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://malot.test")
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
    async with _App(create_app(runner=quick_runner, verify=fake_verify)) as client:
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

    async with _App(create_app(runner=slow_runner, verify=fake_verify)) as client:
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

    async with _App(create_app(runner=blocked, verify=fake_verify, queue_size=3, workers=1)) as client:
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
    async with _App(create_app(runner=quick_runner, verify=fake_verify)) as client:
        bad_json = await client.post("/v1/jobs", content=b"{not json", headers={"content-type": "application/json"})
        assert bad_json.status_code == 400 and "not valid JSON" in bad_json.json()["error"]
        huge = await client.post("/v1/jobs", json={"statement": "x" * 30_000})
        assert huge.status_code == 413 and "statement is too long" in huge.json()["error"]
        strategy = await client.post("/v1/jobs", json={"statement": "t", "strategy": "magic"})
        assert strategy.status_code == 422
        assert "unknown strategy 'magic'; strategies: " in strategy.json()["error"]
        assert "ma-lot" in strategy.json()["error"] and "whole-proof" in strategy.json()["error"]
        budget = await client.post("/v1/jobs", json={"statement": "t", "samples": 0})
        assert budget.status_code == 422 and "samples" in budget.json()["error"]
        both = await client.post("/v1/jobs", json={})
        assert both.status_code == 422 and "exactly one of 'statement' or 'problem'" in both.json()["error"]
        unknown = await client.get("/v1/jobs/nope")
        assert unknown.status_code == 404 and "no job 'nope'" in unknown.json()["error"]


async def test_api_keys_protect_everything_but_health(tmp_path: Path) -> None:
    from malot.server.app import load_api_keys

    tokens = tmp_path / "tokens"
    tokens.write_text("# deploy keys\nsecret-1\n")
    app = create_app(runner=quick_runner, verify=fake_verify, api_keys=load_api_keys(tokens))
    async with _App(app) as client:
        assert (await client.get("/health")).status_code == 200
        assert (await client.post("/v1/jobs", json={"statement": "t"})).status_code == 401
        ok = await client.post("/v1/jobs", json={"statement": "t"}, headers={"Authorization": "Bearer secret-1"})
        assert ok.status_code == 202


async def test_jobs_survive_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite"
    gate = asyncio.Event()
    started = asyncio.Event()

    async def blocked(request: ProveJobRequest, emit: EventSink) -> JobOutcome:
        started.set()
        await gate.wait()
        return JobOutcome("proved")

    async with _App(create_app(runner=blocked, verify=fake_verify, store_path=db, workers=1)) as client:
        ids = [(await client.post("/v1/jobs", json={"statement": f"s{i}"})).json()["job_id"] for i in range(5)]
        await asyncio.wait_for(started.wait(), 30)  # one job is running when the server stops
    # a new server on the same store resumes every job
    async with _App(create_app(runner=quick_runner, verify=fake_verify, store_path=db, workers=2)) as client:
        views = [await _wait_done(client, job_id) for job_id in ids]
        assert [v["status"] for v in views] == ["proved"] * 5
        events = await _sse(client, f"/v1/jobs/{ids[0]}/events")
        assert "requeued" in [e["event"] for e in events]


async def test_kimina_verify_shape_and_openapi() -> None:
    async with _App(create_app(runner=quick_runner, verify=fake_verify)) as client:
        reply = await client.post(
            "/verify",
            json={
                "codes": [
                    {"custom_id": "a", "proof": "theorem x : True := trivial"},
                    {"custom_id": "b", "code": "sorry"},
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
            "/health",
            "/version",
        } <= spec["paths"].keys()


async def test_storage_runs_off_the_event_loop(tmp_path: Path) -> None:
    """While another connection holds SQLite's write lock, a submission waits for its commit on the storage
    thread and the server keeps answering; the 202 comes only once the job is committed."""
    db = tmp_path / "jobs.sqlite"
    async with _App(create_app(runner=quick_runner, verify=fake_verify, store_path=db)) as client:
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

    app = create_app(runner=gated, verify=fake_verify, queue_size=4, workers=1)
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
