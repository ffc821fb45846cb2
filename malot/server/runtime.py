"""What the HTTP server runs jobs with: one :class:`~malot.provers.Prover` (LLM, Lean verifier, executor) shared
by every job, the same machinery as ``malot prove``, plus the acceptance-rule check behind the verify endpoints.

Trace events of a job's attempts are translated into the job's stream: ``attempt`` (an attempt started), ``verdict``
(Lean's verdict on a candidate, with the first errors), ``step`` (other agent steps) and ``attempt_finished``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from malot.agents import Budget
from malot.config import Settings
from malot.errors import BackendUnavailableError, MalotError
from malot.server.jobs import EventSink, JobOutcome
from malot.server.models import ProveJobRequest, VerifyRequest, VerifyResponse

if TYPE_CHECKING:
    from malot.lean.base import CheckResult, Verifier

__all__ = ["ProverRuntime", "check_result_payload"]


class ProverRuntime:
    """Owns the prover the server's jobs share; ``run`` is the job runner, and it is the
    :class:`~malot.server.app.LeanService` of the verify endpoints (``verify``, ``verify_codes``, ``check``)."""

    def __init__(self, settings: Settings, *, llm: Any = None, verifier: Any = None) -> None:
        from malot.provers import Prover

        self.settings = settings
        self._routes: dict[str, EventSink] = {}
        self.prover = Prover(settings, llm=llm, verifier=verifier, on_event=self._dispatch)

    async def __aenter__(self) -> ProverRuntime:
        await self.prover.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.prover.aclose()

    async def aclose(self) -> None:
        """Close the prover (its LLM and Lean processes)."""
        await self.prover.aclose()

    def _dispatch(self, event: dict[str, Any]) -> None:
        emit = self._routes.get(str(event.get("group_id")))
        if emit is None:
            return
        kind = event.get("type")
        attempt = event.get("attempt_id")
        if kind == "attempt_started":
            emit("attempt", {"attempt": attempt, "index": event.get("index")})
        elif kind == "step":
            output = event.get("output") or {}
            if event.get("output_type") == "ProofFeedback":
                errors = output.get("errors") or []
                candidate = output.get("candidate") or {}
                emit(
                    "verdict",
                    {
                        "attempt": attempt,
                        "outcome": event.get("outcome"),
                        "round": candidate.get("round"),
                        "errors": errors[:3],
                    },
                )
            else:
                emit("step", {"attempt": attempt, "node": event.get("node"), "outcome": event.get("outcome")})
        elif kind == "attempt_finished":
            emit("attempt_finished", {"attempt": attempt, "status": event.get("status"), "reason": event.get("reason")})

    async def run(self, request: ProveJobRequest, emit: EventSink) -> JobOutcome:
        """Prove what ``request`` asks, streaming progress through ``emit``."""
        problem = request.to_problem()
        b = self.settings.budget
        budget = Budget(
            samples=b.samples,
            tokens=request.token_budget or b.tokens,
            lean_cpu_seconds=request.lean_cpu_seconds or b.lean_cpu_seconds,
            wall_seconds=request.wall_seconds or b.wall_seconds,
        )
        group_id = f"job-{uuid.uuid4().hex[:12]}"
        self._routes[group_id] = emit
        try:
            result = await self.prover.prove(
                problem,
                strategy=request.strategy,
                samples=request.samples,
                rounds=request.rounds,
                budget=budget,
                group_id=group_id,
                max_tokens=request.max_tokens,
            )
        finally:
            self._routes.pop(group_id, None)
        if result.proved:
            emit("proof", {"proof": result.proof, "round": result.proof_round})
        return JobOutcome("proved" if result.proved else "not_proved", result.model_dump(mode="json"))

    async def verify(self, request: VerifyRequest) -> VerifyResponse:
        """Check one proof with the acceptance rule (or only its screen)."""
        from malot.lean.acceptance import AcceptanceRule, TargetTheorem, screen, split_source, verify_candidate

        rule = AcceptanceRule.from_settings(self.settings.lean)
        if request.always_check:
            rule = rule.model_copy(update={"check_screened": True})
        if request.code is not None:
            target, candidate = split_source(request.code)
        else:
            assert request.statement is not None and request.proof is not None
            target = TargetTheorem(header=request.header or "", statement=request.statement)
            candidate = request.proof
        if request.screen_only:
            screened = screen(target, candidate, rule)
            return VerifyResponse(accepted=screened.ok, result={"target": target.name, **screened.to_dict()})
        result = await verify_candidate(self._verifier(), target, candidate, rule, request.timeout)
        return VerifyResponse(accepted=result.accepted, result=check_result_payload(result))

    async def verify_codes(self, codes: Sequence[str], timeout: float) -> list[VerifyResponse | MalotError]:  # noqa: ASYNC109
        """Whole Lean files through the acceptance rule (whole-file mode, Lean run even where the screen rejects,
        to return its messages), all in one verifier call; a :class:`MalotError` for a file with no theorem."""
        from malot.lean.acceptance import AcceptanceRule, TargetTheorem, split_source, verify_candidates

        rule = AcceptanceRule.from_settings(self.settings.lean).model_copy(update={"check_screened": True})
        out: list[VerifyResponse | MalotError | None] = [None] * len(codes)
        items: list[tuple[int, TargetTheorem, str]] = []
        for i, code in enumerate(codes):
            try:
                target, candidate = split_source(code)
            except MalotError as exc:
                out[i] = exc
                continue
            items.append((i, target, candidate))
        if items:
            checked = await verify_candidates(self._verifier(), [(t, c) for _, t, c in items], rule, timeout)
            for (i, _, _), result in zip(items, checked, strict=True):
                out[i] = VerifyResponse(accepted=result.accepted, result=check_result_payload(result))
        return [r for r in out if r is not None]

    async def check(self, snippets: Sequence[tuple[str, str]], timeout: float | None) -> list[CheckResult]:  # noqa: ASYNC109
        """Lean's raw answer for ``(id, code)`` snippets (no acceptance rule), in one verifier call."""
        from malot.lean.base import Snippet

        return list(await self._verifier().check([Snippet(id=i, code=c) for i, c in snippets], timeout))

    def _verifier(self) -> Verifier:
        verifier: Verifier | None = self.prover.verifier
        if verifier is None:
            raise BackendUnavailableError(
                "the server has no Lean verifier", hint="start it with --lean, --project or --kimina"
            )
        return verifier


def check_result_payload(result: Any) -> dict[str, Any]:
    """A CheckResult as JSON, in a REPL-like shape (``messages`` with ``pos``/``endPos``, ``sorries``, ``time``)
    plus malot's verdict: ``accepted``, every flag and the reasons."""
    data: dict[str, Any] = result.model_dump(mode="json", by_alias=True)
    data["time"] = result.time_s
    data["flags"] = result.flags()
    data["reasons"] = result.reasons()
    return data
