"""Request and response shapes of the HTTP API (pydantic v2), including Kimina Lean Server's ``/verify`` shapes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "MAX_STATEMENT_CHARS",
    "ErrorBody",
    "JobEvent",
    "JobState",
    "JobView",
    "KiminaCode",
    "KiminaResult",
    "KiminaVerifyRequest",
    "KiminaVerifyResponse",
    "ProveJobRequest",
    "SubmitResponse",
    "VerifyRequest",
    "VerifyResponse",
]

#: Statements and proofs longer than this are refused (413-like 422 with a clear message).
MAX_STATEMENT_CHARS = 20_000
MAX_PROOF_CHARS = 200_000

JobState = Literal["queued", "running", "proved", "not_proved", "failed", "cancelled"]
TERMINAL_STATES: frozenset[str] = frozenset({"proved", "not_proved", "failed", "cancelled"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProveJobRequest(_Strict):
    """Submit a proving job: a Lean statement (with optional header and informal text) or a dataset problem id."""

    statement: str | None = Field(None, max_length=MAX_STATEMENT_CHARS, description="Lean theorem ending in ':= by'")
    header: str | None = Field(None, max_length=MAX_STATEMENT_CHARS, description="imports/options before it")
    informal: str | None = Field(None, max_length=MAX_STATEMENT_CHARS)
    problem: str | None = Field(None, max_length=200, description="a dataset problem id, e.g. minif2f:mathd_algebra_10")
    strategy: str = Field("ma-lot", description="a proving strategy name (see malot.provers.registry)")
    samples: int | None = Field(None, ge=1, le=1024)

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, value: str) -> str:
        from malot.provers.registry import strategy_names

        if value not in strategy_names():
            raise ValueError(f"unknown strategy {value!r}; strategies: {', '.join(strategy_names())}")
        return value

    rounds: int | None = Field(None, ge=0, le=64)
    max_tokens: int | None = Field(None, ge=1, le=1_000_000)
    wall_seconds: float | None = Field(None, gt=0, le=86_400)
    lean_cpu_seconds: float | None = Field(None, gt=0, le=86_400)

    @model_validator(mode="after")
    def _one_source(self) -> ProveJobRequest:
        if (self.statement is None) == (self.problem is None):
            raise ValueError("give exactly one of 'statement' or 'problem'")
        return self


class SubmitResponse(BaseModel):
    """The id of an accepted job and where to follow it."""

    job_id: str
    status: JobState
    events_url: str
    result_url: str


class JobEvent(BaseModel):
    """One event of a job's stream: attempts, verdicts, the final proof."""

    seq: int
    type: str
    data: dict[str, Any]
    time: float


class JobView(BaseModel):
    """A job's status and, once finished, its result."""

    job_id: str
    status: JobState
    request: dict[str, Any]
    created: float
    updated: float
    result: dict[str, Any] | None = None
    error: str | None = None


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer carries one clear message."""

    error: str
    detail: Any | None = None


class VerifyRequest(_Strict):
    """Check a proof with the acceptance rule: a whole snippet, or header + statement + proof."""

    code: str | None = Field(None, max_length=MAX_PROOF_CHARS)
    header: str | None = Field(None, max_length=MAX_STATEMENT_CHARS)
    statement: str | None = Field(None, max_length=MAX_STATEMENT_CHARS)
    proof: str | None = Field(None, max_length=MAX_PROOF_CHARS)
    timeout: float = Field(60.0, gt=0, le=3600)
    screen_only: bool = False
    always_check: bool = Field(False, description="run Lean even when the screen rejects, to return its messages")

    @model_validator(mode="after")
    def _shape(self) -> VerifyRequest:
        if self.code is None and (self.statement is None or self.proof is None):
            raise ValueError("give 'code', or 'statement' and 'proof' (with an optional 'header')")
        return self


class VerifyResponse(BaseModel):
    """The verdict with every acceptance flag."""

    accepted: bool
    result: dict[str, Any]


class KiminaCode(BaseModel):
    """One entry of Kimina Lean Server's ``/verify`` request."""

    model_config = ConfigDict(extra="allow")

    custom_id: str
    proof: str | None = Field(None, max_length=MAX_PROOF_CHARS)
    code: str | None = Field(None, max_length=MAX_PROOF_CHARS)


class KiminaVerifyRequest(BaseModel):
    """Kimina Lean Server's ``/verify`` request: ``{codes: [{custom_id, proof | code}], timeout, ...}``."""

    model_config = ConfigDict(extra="allow")

    codes: list[KiminaCode] = Field(..., min_length=1, max_length=1000)
    timeout: float = Field(300.0, gt=0, le=3600)
    infotree_type: str | None = None
    disable_cache: bool = False


class KiminaResult(BaseModel):
    """One entry of Kimina's ``/verify`` response: ``{custom_id, error, response}``."""

    custom_id: str
    error: str | None = None
    response: dict[str, Any] | None = None


class KiminaVerifyResponse(BaseModel):
    """Kimina Lean Server's ``/verify`` response."""

    results: list[KiminaResult]
