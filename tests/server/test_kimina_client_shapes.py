"""``POST /api/check`` against the shapes of the real Kimina client, kimina-client 0.2.1 (PyPI).

kimina-client 0.2.1 does not import on Python 3.11 with current pydantic (2.14): its ``models.py`` takes
``TypedDict`` from ``typing``, which pydantic refuses before Python 3.12 ("Please use typing_extensions.TypedDict"),
and it also imports ``pygments`` without declaring it. So CI cannot run it. The models below restate, from that
release's ``kimina_client/models.py``, what its ``CheckRequest.model_dump()`` sends and what its ``CheckResponse`` /
``ReplResponse`` accept (``TypedDict`` response shapes, "exactly one of error or response", the status analysis);
the route's real answers must validate against them. The real client itself was run against ``malot serve`` with a
one-line shim (``typing.TypedDict = typing_extensions.TypedDict``): see ``kimina_client_interop.py`` beside this file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal, NotRequired

import pytest
from pydantic import BaseModel, Field, model_validator
from typing_extensions import TypedDict  # pydantic needs this TypedDict before Python 3.12

from malot.config import Settings
from malot.lean.file_backend import LeanFileVerifier
from malot.llm.fake import ScriptedLLM
from malot.server.app import create_app
from malot.server.runtime import ProverRuntime

from .test_jobs_api import FakeLean, _App, quick_runner
from .test_prove_api import BAD, GOOD

# ---------------------------------------------------------------- kimina-client 0.2.1's wire shapes, restated


class ClientPos(TypedDict):
    line: int
    column: int


class ClientMessage(TypedDict):
    severity: Literal["trace", "info", "warning", "error"]
    pos: ClientPos
    endPos: NotRequired[ClientPos | None]
    data: str


class ClientSorry(TypedDict):
    pos: ClientPos
    endPos: ClientPos
    goal: str
    proofState: NotRequired[int | None]


class ClientCommandResponse(TypedDict):
    env: NotRequired[int | None]
    messages: NotRequired[list[ClientMessage] | None]
    sorries: NotRequired[list[ClientSorry] | None]
    tactics: NotRequired[list[Any] | None]
    infotree: NotRequired[Any]


class ClientReplError(TypedDict):
    message: str


class ClientDiagnostics(TypedDict, total=False):
    repl_uuid: str
    cpu_max: float
    memory_max: float


class ClientSnippet(BaseModel):
    id: str
    code: str


class ClientCheckRequest(BaseModel):
    """What ``AsyncKiminaClient.api_check`` posts: ``CheckRequest(...).model_dump()`` (``infotree: None`` included)."""

    snippets: list[ClientSnippet]
    timeout: int = Field(30, ge=0)
    debug: bool = False
    reuse: bool = True
    infotree: Literal["full", "tactics", "original", "substantive"] | None = None


class ClientReplResponse(BaseModel):
    """One result as the client parses it."""

    id: str
    time: float = 0.0
    error: str | None = None
    response: ClientCommandResponse | ClientReplError | None = None
    diagnostics: ClientDiagnostics | None = None

    @model_validator(mode="before")
    @classmethod
    def _error_xor_response(cls, values: dict[str, Any]) -> dict[str, Any]:
        if not values.get("error") and values.get("response") is None:
            raise ValueError("Either `error` or `response` must be set")
        if values.get("error") is not None and values.get("response") is not None:
            raise ValueError("Only one of `error` or `response` can be set")
        return values

    def status(self) -> str:
        """The client's ``analyze()`` classification."""
        if self.error is not None:
            return "timeout_error" if "timed out" in self.error else "server_error"
        assert self.response is not None
        if "message" in self.response:
            return "repl_error"
        messages = self.response.get("messages") or []
        if any(m["severity"] == "error" for m in messages):
            return "lean_error"
        return "sorry" if self.response.get("sorries") else "valid"


class ClientCheckResponse(BaseModel):
    results: list[ClientReplResponse]


# ---------------------------------------------------------------- the tests


async def _check_like_the_client(app: Any, snippets: list[tuple[str, str]], seconds: int) -> ClientCheckResponse:
    body = ClientCheckRequest(snippets=[ClientSnippet(id=i, code=c) for i, c in snippets], timeout=seconds)
    async with _App(app) as client:
        reply = await client.post("/api/check", json=body.model_dump())
    assert reply.status_code == 200, reply.text
    return ClientCheckResponse.model_validate(reply.json())


async def test_client_shapes_with_an_error_a_timeout_and_a_message() -> None:
    lean = FakeLean()
    parsed = await _check_like_the_client(
        create_app(runner=quick_runner, lean=lean), [("ok", "#check Nat"), ("slow", "loop")], seconds=0
    )
    assert [(r.id, r.status()) for r in parsed.results] == [("ok", "valid"), ("slow", "timeout_error")]
    assert lean.calls == [["#check Nat", "loop"]]


@pytest.fixture
async def lean_runtime(lean_exe: Path) -> AsyncIterator[ProverRuntime]:
    settings = Settings.model_validate({"retrieval": {"retriever": "none", "k": 0}})
    async with (
        LeanFileVerifier(lean_exe, workers=2, sandbox="off") as verifier,
        ProverRuntime(settings, llm=ScriptedLLM(["unused"]), verifier=verifier) as rt,
    ):
        yield rt


@pytest.mark.lean
async def test_client_shapes_with_the_real_lean(lean_runtime: ProverRuntime) -> None:
    app = create_app(runner=lean_runtime.run, lean=lean_runtime)
    parsed = await _check_like_the_client(app, [("good", GOOD), ("bad", BAD)], seconds=60)
    good, bad = parsed.results
    assert (good.id, good.status(), bad.id, bad.status()) == ("good", "valid", "bad", "lean_error")
    assert good.time > 0 and bad.error is None
    assert isinstance(bad.response, dict)
    errors = [m for m in bad.response.get("messages") or [] if m["severity"] == "error"]
    assert errors and errors[0]["pos"]["line"] >= 1 and "endPos" in errors[0]
