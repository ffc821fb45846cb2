"""The Kimina Lean Server client against an httpx.MockTransport speaking the server's two endpoints."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from malot.errors import VerifierError
from malot.lean import Snippet, TargetTheorem, verify_candidate
from malot.lean.kimina import KiminaVerifier


def ok_response(code: str) -> dict[str, Any]:
    """What Lean answers for a good proof: the axioms message at the line of the ``#print axioms`` command."""
    line = next((i for i, ln in enumerate(code.split("\n"), 1) if ln.startswith("#print axioms")), 4)
    message = {
        "severity": "info",
        "pos": {"line": line, "column": 0},
        "endPos": {"line": line, "column": 6},
        "data": "'t' depends on axioms: [propext]",
    }
    return {"env": 0, "messages": [message]}


def server(requests: list[dict[str, Any]]) -> httpx.MockTransport:
    """A stand-in for the server: /api/check and /verify with the documented shapes."""

    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        requests.append({"path": request.url.path, "body": body, "auth": request.headers.get("authorization")})
        if request.url.path == "/api/check":
            results = []
            for s in body["snippets"]:
                if "slow" in s["code"]:
                    results.append({"id": s["id"], "time": 1.0, "error": "Lean process timed out"})
                elif "refused" in s["code"]:
                    results.append({"id": s["id"], "time": 0.1, "response": {"message": "Unknown environment."}})
                else:
                    results.append({"id": s["id"], "time": 0.5, "response": ok_response(s["code"]), "diagnostics": {}})
            return httpx.Response(200, json={"results": results})
        if request.url.path == "/verify":
            results = [{"custom_id": c["custom_id"], "response": ok_response(c["proof"])} for c in body["codes"]]
            return httpx.Response(200, json={"results": results})
        return httpx.Response(404, json={"detail": "Not Found"})

    return httpx.MockTransport(handle)


async def test_check_endpoint_shapes_and_results() -> None:
    seen: list[dict[str, Any]] = []
    async with KiminaVerifier("http://127.0.0.1:8000/", transport=server(seen), api_key="k", batch_size=2) as v:
        results = await v.check(
            [Snippet(id="a", code="ok"), Snippet(id="b", code="slow"), Snippet(id="c", code="refused")], timeout=20
        )
    assert [r.id for r in results] == ["a", "b", "c"]
    assert results[0].status == "ok" and results[0].messages[0].data.startswith("'t' depends")
    assert results[0].messages[0].pos is not None and results[0].messages[0].pos.line == 4
    assert results[1].status == "timeout" and results[2].status == "error"
    assert [r["path"] for r in seen] == ["/api/check", "/api/check"]  # two batches of at most 2
    assert seen[0]["body"] == {
        "snippets": [{"id": "a", "code": "ok"}, {"id": "b", "code": "slow"}],
        "timeout": 20,
        "debug": False,
        "reuse": True,
    }
    assert seen[0]["auth"] == "Bearer k"


async def test_verify_endpoint_and_acceptance() -> None:
    seen: list[dict[str, Any]] = []
    target = TargetTheorem(header="import Mathlib\n", statement="theorem t : 1 = 1 := by")
    async with KiminaVerifier("http://127.0.0.1:8000", transport=server(seen), endpoint="verify") as v:
        result = await verify_candidate(v, target, "rfl")
    body = seen[0]["body"]
    assert seen[0]["path"] == "/verify" and set(body) == {"codes", "timeout", "disable_cache"}
    assert body["codes"][0]["proof"].endswith("#print axioms t\n")
    assert result.accepted and result.axioms == ["propext"]


async def test_http_errors_are_reported() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(500, text="boom"))
    async with KiminaVerifier("http://127.0.0.1:8000", transport=transport) as v:
        with pytest.raises(VerifierError, match="500"):
            await v.check([Snippet(id="a", code="x")])
