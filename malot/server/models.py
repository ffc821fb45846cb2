"""Request and response shapes of the HTTP API (pydantic v2), including Kimina Lean Server's ``/api/check`` and
``/verify`` shapes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

if TYPE_CHECKING:
    from malot.lean.base import CheckResult
    from malot.provers.problem import Problem

__all__ = [
    "MAX_STATEMENT_CHARS",
    "ErrorBody",
    "JobEvent",
    "JobState",
    "JobView",
    "KiminaCheckRequest",
    "KiminaCheckResponse",
    "KiminaCheckResult",
    "KiminaCode",
    "KiminaResult",
    "KiminaSnippet",
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
    max_tokens: int | None = Field(
        None, ge=1, le=1_000_000, description="cap on each generation's tokens, as [prover] max_tokens (its default)"
    )
    token_budget: int | None = Field(
        None,
        ge=1,
        le=1_000_000_000,
        description="the whole job's token budget (prompt + completion over every generation), as [budget] tokens",
    )
    wall_seconds: float | None = Field(None, gt=0, le=86_400)
    lean_cpu_seconds: float | None = Field(None, gt=0, le=86_400)

    @model_validator(mode="after")
    def _one_source(self) -> ProveJobRequest:
        if (self.statement is None) == (self.problem is None):
            raise ValueError("give exactly one of 'statement' or 'problem'")
        self.to_problem()  # an unknown problem or a statement without a theorem is refused at submission
        return self

    def to_problem(self) -> Problem:
        """The problem this job proves (raises :class:`~malot.errors.DatasetError` for an unknown problem name or
        a statement with no ``theorem``/``lemma``/``example``)."""
        from malot.errors import DatasetError
        from malot.provers.problem import Problem, load_problem

        try:
            if self.problem is not None:
                return load_problem(self.problem)
            assert self.statement is not None
            return Problem.from_statement(self.statement, header=self.header, informal=self.informal)
        except DatasetError as exc:
            raise ValueError(str(exc)) from None


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

    custom_id: str | int
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

    custom_id: str | int
    error: str | None = None
    response: dict[str, Any] | None = None


class KiminaVerifyResponse(BaseModel):
    """Kimina Lean Server's ``/verify`` response."""

    results: list[KiminaResult]


class KiminaSnippet(BaseModel):
    """One snippet of Kimina Lean Server's ``/api/check`` request."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(..., max_length=200)
    code: str = Field(..., max_length=MAX_PROOF_CHARS)


class KiminaCheckRequest(BaseModel):
    """Kimina Lean Server's ``/api/check`` request: ``{snippets: [{id, code}], timeout, debug, reuse, infotree}``.

    ``timeout`` is per snippet in seconds (``0``: the server's ``[lean] timeout_s``); ``reuse`` and ``infotree``
    are accepted and ignored (malot's verifiers return no info trees), ``debug`` adds no diagnostics."""

    model_config = ConfigDict(extra="allow")

    snippets: list[KiminaSnippet] = Field(..., min_length=1, max_length=1000)
    timeout: int = Field(30, ge=0, le=3600)
    debug: bool = False
    reuse: bool = True
    infotree: str | None = None

    @model_validator(mode="after")
    def _unique_ids(self) -> KiminaCheckRequest:
        if len({s.id for s in self.snippets}) != len(self.snippets):
            raise ValueError("snippet ids must be unique")
        return self


class KiminaCheckResult(BaseModel):
    """One result of ``/api/check``: exactly one of ``error`` (the check failed or timed out; a timeout says
    "timed out") and ``response`` (Lean's answer as a REPL command response: ``messages``, ``sorries``)."""

    id: str
    time: float = 0.0
    error: str | None = None
    response: dict[str, Any] | None = None
    diagnostics: dict[str, Any] | None = None

    @classmethod
    def from_check(cls, result: CheckResult) -> KiminaCheckResult:
        """Lean's raw answer for one snippet in Kimina's shape."""
        if result.status == "timeout":
            return cls(id=result.id, time=result.time_s, error=result.error or "Lean timed out")
        if result.status != "ok":
            return cls(id=result.id, time=result.time_s, error=result.error or f"the check ended with {result.status}")
        origin = {"line": 1, "column": 0}  # only for a message without a position (Kimina's shape requires one)
        messages = [
            {
                "severity": m.severity,
                "pos": m.pos.model_dump() if m.pos else origin,
                "endPos": m.end_pos.model_dump() if m.end_pos else None,
                "data": m.data,
            }
            for m in result.messages
        ]
        sorries = [
            {
                "pos": s.pos.model_dump() if s.pos else origin,
                "endPos": s.end_pos.model_dump() if s.end_pos else origin,
                "goal": s.goal,
                "proofState": s.proof_state,
            }
            for s in result.sorries
        ]
        response: dict[str, Any] = {"messages": messages}
        if sorries:
            response["sorries"] = sorries
        return cls(id=result.id, time=result.time_s, response=response)


class KiminaCheckResponse(BaseModel):
    """Kimina Lean Server's ``/api/check`` response: ``{results: [{id, time, error | response, diagnostics}]}``."""

    results: list[KiminaCheckResult]
