"""The HTTP API on the real prover: a scripted LLM and the real Lean 4.35 (prelude theorems) decide every verdict.

Through httpx's ASGI transport: submit, stream, result, cancel, and Kimina-shaped ``/verify``. Through a real
uvicorn on 127.0.0.1 (``malot serve`` in a subprocess): 200 concurrent submissions against a queue of 50, and a
kill -9 / restart in the middle of the run that loses no accepted job.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from malot.config import Settings
from malot.lean.base import CheckResult, Snippet
from malot.lean.file_backend import LeanFileVerifier
from malot.llm.fake import ScriptedLLM
from malot.server.app import create_app
from malot.server.runtime import ProverRuntime
from malot.testing.server import ServerProcess, collect_outcomes, store_counts, submit_burst, wait_for_store
from tests.provers.helpers import load_suite, lot_answers

from .test_jobs_api import _App, _sse, _wait_done

SUITE = load_suite()
BY_NAME = {r["name"]: r for r in SUITE}

pytestmark = pytest.mark.lean


def _settings(**prover: Any) -> Settings:
    # the scripted answers are LoT-Solver's format: name its template (the default model's may differ)
    prover = {"template": "lot-solver", **prover}
    return Settings.model_validate({"prover": prover, "retrieval": {"retriever": "none", "k": 0}})


@pytest.fixture
async def runtime(lean_exe: Path) -> AsyncIterator[ProverRuntime]:
    llm = ScriptedLLM(lot_answers(BY_NAME, wrong_rounds=1))
    async with (
        LeanFileVerifier(lean_exe, workers=2, sandbox="off") as verifier,
        ProverRuntime(_settings(samples=1, rounds=2), llm=llm, verifier=verifier) as rt,
    ):
        yield rt


async def test_submit_stream_result_with_real_lean(runtime: ProverRuntime) -> None:
    record = SUITE[3]
    app = create_app(runner=runtime.run, lean=runtime)
    async with _App(app) as client:
        body = {"statement": record["statement"], "header": record["header"], "strategy": "ma-lot", "rounds": 2}
        job = (await client.post("/v1/jobs", json=body)).json()
        events = await _sse(client, job["events_url"])
        kinds = [e["event"] for e in events]
        assert kinds[:3] == ["queued", "started", "attempt"]
        verdicts = [e["data"]["outcome"] for e in events if e["event"] == "verdict"]
        assert verdicts == ["failed", "verified"]  # the wrong proof first, then the corrected one
        failed = next(e for e in events if e["event"] == "verdict")
        assert failed["data"]["errors"]
        proof = next(e for e in events if e["event"] == "proof")["data"]["proof"]
        assert record["statement"] in proof and record["proof"] in proof
        assert events[-1]["event"] == "finished" and events[-1]["data"]["status"] == "proved"
        view = (await client.get(job["result_url"])).json()
        assert view["status"] == "proved" and view["result"]["proof_round"] == 1


async def test_cancel_with_the_real_prover(lean_exe: Path) -> None:
    gate = asyncio.Event()
    llm = ScriptedLLM(lot_answers(BY_NAME), gate=gate)  # holds the job in flight until the gate opens
    async with (
        LeanFileVerifier(lean_exe, workers=1, sandbox="off") as verifier,
        ProverRuntime(_settings(samples=2), llm=llm, verifier=verifier) as rt,
        _App(create_app(runner=rt.run, lean=rt)) as client,
    ):
        record = SUITE[0]
        body = {"statement": record["statement"], "header": record["header"]}
        job = (await client.post("/v1/jobs", json=body)).json()
        await llm.wait_held()  # the job is running: its first model call waits at the gate
        await client.post(f"/v1/jobs/{job['job_id']}/cancel")
        view = await _wait_done(client, job["job_id"])
        assert view["status"] == "cancelled"
        gate.set()
        # the server still proves the next job
        job2 = (await client.post("/v1/jobs", json=body)).json()
        assert (await _wait_done(client, job2["job_id"]))["status"] == "proved"


GOOD = """prelude
inductive MyNat where
  | zero : MyNat
  | succ : MyNat → MyNat

inductive Eq' {α : Sort u} (a : α) : α → Prop where
  | refl : Eq' a a

theorem zero_refl : Eq' MyNat.zero MyNat.zero := Eq'.refl
"""
BAD = GOOD.replace("Eq' MyNat.zero MyNat.zero :=", "Eq' MyNat.zero (MyNat.succ MyNat.zero) :=")


async def test_verify_endpoints_with_real_lean(runtime: ProverRuntime) -> None:
    record = SUITE[5]
    async with _App(create_app(runner=runtime.run, lean=runtime)) as client:
        one = await client.post(
            "/v1/verify",
            json={"header": record["header"], "statement": record["statement"], "proof": record["proof"]},
        )
        assert one.status_code == 200 and one.json()["accepted"] is True
        assert one.json()["result"]["flags"]["axioms_allowed"] is True
        wrong = await client.post(
            "/v1/verify",
            json={"header": record["header"], "statement": record["statement"], "proof": record["wrong_proof"]},
        )
        assert wrong.json()["accepted"] is False and wrong.json()["result"]["flags"]["no_errors"] is False
        kimina = await client.post(
            "/verify",
            json={"codes": [{"custom_id": "good", "proof": GOOD}, {"custom_id": "bad", "code": BAD}], "timeout": 60},
        )
        results = {r["custom_id"]: r for r in kimina.json()["results"]}
        assert results["good"]["error"] is None and results["good"]["response"]["accepted"] is True
        assert not [m for m in results["good"]["response"]["messages"] if m["severity"] == "error"]
        bad_response = results["bad"]["response"]
        assert bad_response["accepted"] is False
        assert any(m["severity"] == "error" and "endPos" in m for m in bad_response["messages"])
        # whole-file mode: the file's own prefix is the statement's context; a theorem that rests on an axiom the
        # file declares is rejected, but Lean's messages come back
        cheat = GOOD.replace(
            "theorem zero_refl : Eq' MyNat.zero MyNat.zero := Eq'.refl",
            "axiom cheat : Eq' MyNat.zero (MyNat.succ MyNat.zero)\n\n"
            "theorem zero_one : Eq' MyNat.zero (MyNat.succ MyNat.zero) := cheat",
        )
        flagged = (await client.post("/verify", json={"codes": [{"custom_id": "h", "code": cheat}]})).json()
        response = flagged["results"][0]["response"]
        assert response["accepted"] is False and response["flags"]["axioms_allowed"] is False
        assert not [m for m in response["messages"] if m["severity"] == "error"]
        screened = await client.post("/v1/verify", json={"code": GOOD.replace("Eq'.refl\n", "sorry\n")})
        assert screened.json()["accepted"] is False


@pytest.mark.slow
async def test_load_200_submissions_queue_50_and_restart_mid_run(lean_exe: Path, tmp_path: Path) -> None:
    records = SUITE[:20]
    script = tmp_path / "script.json"
    script.write_text(json.dumps({f"theorem {r['name']} ": f"  {r['proof']}\n```" for r in records}))
    config = tmp_path / "malot.toml"
    config.write_text(
        '[prover]\nstrategy = "whole-proof"\ntemplate = "deepseek-prover-v1.5"\nsamples = 1\n'
        '[retrieval]\nretriever = "none"\nk = 0\n[lean]\nsandbox = "off"\npool_size = 2\n'
    )
    store = tmp_path / "jobs.sqlite"
    args = [
        "--model",
        f"script:{script}",
        "--lean",
        str(lean_exe),
        "--store",
        str(store),
        "--queue-size",
        "50",
        "--workers",
        "2",
    ]
    bodies = [{"statement": r["statement"], "header": r["header"]} for r in records * 10]
    server = ServerProcess(args, config=config, log=tmp_path / "server.log").start()
    try:
        burst = await submit_burst(server.url, bodies)
        assert len(burst.accepted) + burst.rejected_429 == 200 and burst.other == []
        assert 50 <= len(burst.accepted) <= 54  # the queue, plus the jobs workers already took
        assert burst.rejected_429 >= 146 and min(burst.retry_after) >= 1
        # SIGKILL once the store shows jobs running and jobs still queued: the kill provably lands mid-run
        await wait_for_store(store, lambda c: c["running"] >= 1 and c["queued"] >= 1)
        server.kill()
        at_kill = store_counts(store)
        assert at_kill["running"] >= 1 and at_kill["queued"] >= 1
        assert sum(at_kill[s] for s in ("queued", "running", "proved")) == len(burst.accepted)  # all committed
        server = ServerProcess(args, config=config, port=server.port, log=tmp_path / "server.log").start()
        outcomes = await collect_outcomes(server.url, burst.accepted, timeout_s=240)
        assert outcomes.vanished == [] and outcomes.stuck == []
        assert set(outcomes.status.values()) == {"proved"} and len(outcomes.status) == len(burst.accepted)
        after = store_counts(store)
        assert after["requeued"] == at_kill["running"]  # every job running at the kill was queued again
        async with httpx.AsyncClient(base_url=server.url) as client:
            health = (await client.get("/health")).json()
        assert health["queued"] == 0 and health["running"] == 0
    finally:
        server.kill()


async def test_kimina_routes_check_a_batch_in_one_verifier_call(lean_exe: Path) -> None:
    """``/api/check`` and ``/verify`` hand their whole batch to the verifier at once, on the real Lean."""
    calls: list[int] = []
    async with LeanFileVerifier(lean_exe, workers=2, sandbox="off") as verifier:
        check = verifier.check

        async def counting(snippets: Sequence[Snippet], timeout: float | None = None) -> list[CheckResult]:  # noqa: ASYNC109
            calls.append(len(snippets))
            return await check(snippets, timeout)

        verifier.check = counting  # type: ignore[method-assign]
        async with (
            ProverRuntime(_settings(samples=1), llm=ScriptedLLM(["unused"]), verifier=verifier) as rt,
            _App(create_app(runner=rt.run, lean=rt)) as client,
        ):
            codes = [{"custom_id": f"c{i}", "code": GOOD if i % 2 == 0 else BAD} for i in range(4)]
            legacy = (await client.post("/verify", json={"codes": codes, "timeout": 60})).json()["results"]
            assert [r["response"]["accepted"] for r in legacy] == [True, False, True, False]
            snippets = [{"id": f"s{i}", "code": GOOD if i % 2 == 0 else BAD} for i in range(4)]
            checked = (await client.post("/api/check", json={"snippets": snippets, "timeout": 60})).json()["results"]
            assert [r["id"] for r in checked] == ["s0", "s1", "s2", "s3"]
            assert [any(m["severity"] == "error" for m in r["response"]["messages"]) for r in checked] == [
                False,
                True,
                False,
                True,
            ]
    assert calls[0] == 4 and calls[-1] == 4 and len(calls) == 2  # one call per route (plus none per snippet)


async def test_malot_kimina_client_round_trip_through_api_check(runtime: ProverRuntime) -> None:
    """malot's own Kimina client (the ``kimina`` Lean backend) pointed at ``malot serve``'s ``/api/check``: the
    acceptance rule on the client side reaches the same verdicts as the server's own ``/v1/verify``."""
    from malot.lean.acceptance import AcceptanceRule, TargetTheorem, verify_candidate
    from malot.lean.kimina import KiminaVerifier

    record = SUITE[5]
    target = TargetTheorem(header=record["header"], statement=record["statement"])
    rule = AcceptanceRule.from_settings(runtime.settings.lean)
    app = create_app(runner=runtime.run, lean=runtime)
    async with _App(app):
        transport = httpx.ASGITransport(app=app)
        async with KiminaVerifier("http://malot.test", transport=transport, timeout=60) as kimina:
            good = await verify_candidate(kimina, target, record["proof"], rule, 60)
            wrong = await verify_candidate(kimina, target, record["wrong_proof"], rule, 60)
    assert good.backend == "kimina" and good.accepted is True and good.no_errors is True
    assert wrong.accepted is False and wrong.no_errors is False and wrong.errors


async def test_job_max_tokens_caps_each_generation_and_token_budget_the_job(lean_exe: Path) -> None:
    llm = ScriptedLLM(lot_answers(BY_NAME, wrong_rounds=1))
    record = SUITE[3]
    body = {"statement": record["statement"], "header": record["header"], "strategy": "ma-lot", "rounds": 2}
    async with (
        LeanFileVerifier(lean_exe, workers=1, sandbox="off") as verifier,
        ProverRuntime(_settings(samples=1, rounds=2), llm=llm, verifier=verifier) as rt,
        _App(create_app(runner=rt.run, lean=rt)) as client,
    ):
        plain = (await client.post("/v1/jobs", json=body)).json()
        assert (await _wait_done(client, plain["job_id"]))["status"] == "proved"
        default_cap = max(r.params.max_tokens for r in llm.requests)
        llm.requests.clear()
        capped = (await client.post("/v1/jobs", json={**body, "max_tokens": 300})).json()
        assert (await _wait_done(client, capped["job_id"]))["status"] == "proved"
        assert 300 < default_cap <= rt.settings.prover.max_tokens  # [prover] max_tokens (8192) less the thought
        assert llm.requests and 200 < max(r.params.max_tokens for r in llm.requests) <= 300
        llm.requests.clear()
        starved = (await client.post("/v1/jobs", json={**body, "token_budget": 1})).json()
        view = await _wait_done(client, starved["job_id"])
    # the first generation spends the whole budget: the corrected second round never runs
    assert view["status"] == "not_proved" and view["result"]["stopped"] == "tokens"
