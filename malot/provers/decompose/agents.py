"""The decompose workflow's agents: skeleton writer, skeleton checker and lemma prover (plus the shared verifier).

* ``skeleton`` (LLM): an informal plan, then a formal skeleton whose steps are ``sorry``; on a revision it sees
  the previous skeleton and why it failed (a compile error, or a step shown false).
* ``skeleton_check`` (Lean): the skeleton compiles with only its ``sorry`` holes, and the goal at each hole.
* ``lemmas``: every hole as a standalone lemma proved by the :class:`~malot.provers.decompose.engine.Decomposer`
  (automation, sub-strategy, recursion), in parallel, then the assembled proof for the verifier.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import Field

from malot.agents import Agent, Message, RunContext, Task, Usage
from malot.provers.agents import ProofCandidate, ProofFeedback, ProverDeps
from malot.provers.decompose.engine import Decomposer, StepSpend

__all__ = ["LemmaAgent", "SkeletonAgent", "SkeletonCheckAgent", "SkeletonFeedback", "StepRefuted"]


class SkeletonFeedback(ProofFeedback):
    """The skeleton check: ``outcome`` ``sketched`` (compiles with only its holes) or ``failed``; ``goals`` at the
    holes; ``check`` the full :class:`~malot.provers.decompose.skeleton.SkeletonCheck`."""

    goals: list[str] = Field(default_factory=list)
    check: Any = None


class StepRefuted(Message):
    """A step of the skeleton is false (its negation was proved): the skeleton goes back for revision."""

    candidate: ProofCandidate
    reason: str
    lemmas: list[dict[str, Any]] = Field(default_factory=list)


class LemmasFailed(Message):
    """Some hole could not be proved within the depth limit and the budget; the attempt ends here."""

    candidate: ProofCandidate
    reason: str
    lemmas: list[dict[str, Any]] = Field(default_factory=list)


class SkeletonAgent(Agent[Message, ProofCandidate]):
    """Writes the plan and the skeleton (first round), or a revised skeleton (later rounds)."""

    role = "skeleton"
    resource = "llm"
    input_type = Message
    output_type = ProofCandidate

    def __init__(self, decomposer: Decomposer) -> None:
        self.decomposer = decomposer

    def estimate(self, message: Message) -> Usage:
        first = isinstance(message, Task) or not isinstance(getattr(message, "candidate", None), ProofCandidate)
        return Usage(samples=2 if first and self.decomposer.settings.plan else 1)  # the plan is a call of its own

    async def run(self, message: Message, ctx: RunContext[ProverDeps]) -> ProofCandidate:
        started = time.perf_counter()
        spend = StepSpend(ctx.meter)
        problem = ctx.deps.problem
        previous: ProofCandidate | None = None
        reason = ""
        if isinstance(message, Task):
            sample = int(message.params.get("sample", 0))
            round_ = 0
            plan: str | None = None
        elif isinstance(message, SkeletonFeedback | StepRefuted):
            previous = message.candidate if isinstance(message.candidate, ProofCandidate) else None
            assert previous is not None
            sample, round_, plan = previous.sample, previous.round + 1, previous.thought or ""
            if isinstance(message, StepRefuted):
                reason = message.reason
            else:
                from malot.provers.decompose.engine import _why

                reason = _why(message.check) if message.check is not None else "; ".join(message.reasons)
        else:
            raise TypeError(f"the skeleton agent cannot start from {type(message).__name__}")
        seed = ctx.deps.sampling.seed_for(sample, round_)
        sketch = await self.decomposer.sketch(
            ctx,
            problem,
            spend,
            plan=plan,
            previous=previous.code if previous is not None else "",
            reason=reason,
            seed=seed,
        )
        ctx.note(run_s=time.perf_counter() - started, round=round_, sample=sample, revision=previous is not None)
        return ProofCandidate(
            outcome="candidate" if sketch.code else "no_code",
            code=sketch.code,
            thought=sketch.plan,
            round=round_,
            sample=sample,
            raw_output=sketch.raw_output,
            extraction_error=sketch.reason or None,
            usage=spend.usage,
        )


class SkeletonCheckAgent(Agent[ProofCandidate, SkeletonFeedback]):
    """Checks that the skeleton compiles with only its ``sorry`` holes and reads the goal at each."""

    role = "skeleton_check"
    resource = "lean"

    def __init__(self, decomposer: Decomposer) -> None:
        self.decomposer = decomposer

    async def run(self, message: ProofCandidate, ctx: RunContext[ProverDeps]) -> SkeletonFeedback:
        from malot.provers.decompose.engine import Sketch

        started = time.perf_counter()
        spend = StepSpend(ctx.meter)
        sketch = Sketch(ctx.deps.problem, message.code, reason=message.extraction_error or "")
        check = await self.decomposer.check(ctx, sketch, spend)
        ctx.note(
            lean_s=time.perf_counter() - started,
            lean_called=spend.lean_calls > 0,
            verdict="sketched" if check.ok else "failed",
            holes=len(check.holes),
            run_s=time.perf_counter() - started,
        )
        reasons = list(check.reasons) + [e["data"] for e in check.errors[:3]]
        return SkeletonFeedback(
            outcome="sketched" if check.ok else "failed",
            candidate=message,
            errors=[] if check.ok else ["; ".join(reasons)[:2000] or "the skeleton does not compile"],
            details={"status": "skeleton", "holes": len(check.holes)},
            lean_called=spend.lean_calls > 0,
            messages=check.errors,
            reasons=reasons,
            checked_code=check.code,
            goals=list(check.goals),
            check=check,
            usage=spend.usage,
        )


class LemmaAgent(Agent[SkeletonFeedback, Message]):
    """Proves every hole of a checked skeleton as a lemma and hands the assembled proof to the verifier."""

    role = "lemmas"
    resource = None
    input_type = SkeletonFeedback
    output_type = Message

    def __init__(self, decomposer: Decomposer, depth: int = 0) -> None:
        self.decomposer = decomposer
        self.depth = depth

    async def run(self, message: SkeletonFeedback, ctx: RunContext[ProverDeps]) -> Message:
        started = time.perf_counter()
        spend = StepSpend(ctx.meter)
        skeleton = message.candidate
        assert isinstance(skeleton, ProofCandidate)
        check = message.check
        if not check.holes:
            code = check.code
            result_status, reason, lemmas = "proved", "", []
        else:
            holes = await self.decomposer.prove_holes(ctx, ctx.deps.problem, check, spend, self.depth)
            code, result_status, reason, lemmas = holes.code, holes.status, holes.reason, holes.lemmas
        ctx.note(
            run_s=time.perf_counter() - started,
            lemmas=lemmas,
            outcome=result_status,
            cache_hits=self.decomposer.cache.hits,
            cache_lookups=self.decomposer.cache.lookups,
        )
        if result_status == "refuted":
            return StepRefuted(outcome="refuted", candidate=skeleton, reason=reason, lemmas=lemmas, usage=spend.usage)
        if result_status == "failed":
            return LemmasFailed(outcome="failed", candidate=skeleton, reason=reason, lemmas=lemmas, usage=spend.usage)
        header = ctx.deps.problem.header
        body = code[len(header) :] if header and code.startswith(header) else code
        return ProofCandidate(
            outcome="candidate",
            code=body,
            thought=skeleton.thought,
            round=skeleton.round,
            sample=skeleton.sample,
            raw_output=skeleton.raw_output,
            usage=spend.usage,
        )
