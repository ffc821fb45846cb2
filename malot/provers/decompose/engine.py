"""The decomposition engine: sketch a skeleton, prove its holes as lemmas, recurse, assemble.

:class:`Decomposer` holds what one proving run shares (the :class:`LemmaCache`, the settings) and works for one
agent step at a time through a :class:`StepSpend`, which adds what the step spends (LLM calls, tokens, Lean CPU
seconds) and stops new work once the attempt's budget (the executor's meter plus this step's spending) is used up.

A lemma is proved by, in order: the cache (keyed by the normalised statement); the automation list (one batch of
Lean checks); a cheap refutation (the automation list on the negated statement); the sub-strategy (whole-proof
samples, or MA-LoT with corrections) run through the prover agents; a refutation attempt by the model; and, below
the depth limit, a decomposition of its own. A refuted lemma is reported so the skeleton goes back for revision.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from malot.agents import RunContext, Task, Usage
from malot.provers.decompose import prompts
from malot.provers.decompose.skeleton import (
    LemmaSpec,
    SkeletonCheck,
    assemble,
    check_skeleton,
    lemma_from_goal,
    normalise_statement,
    statement_mode,
)
from malot.provers.problem import Problem

if TYPE_CHECKING:
    from malot.config import DecomposeSettings
    from malot.provers.agents import ProofCandidate, ProverDeps

__all__ = ["Decomposer", "LemmaCache", "LemmaOutcome", "ProvedLemma", "Sketch", "StepSpend"]

Status = Literal["proved", "refuted", "failed"]


@dataclass(frozen=True, slots=True)
class ProvedLemma:
    """A proved lemma: its name, and the declarations that prove it (sub-lemmas first, itself last)."""

    name: str
    declarations: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LemmaOutcome:
    """How proving a lemma ended; ``lemma`` when proved, ``reason`` otherwise, ``how`` says which step decided."""

    status: Status
    lemma: ProvedLemma | None = None
    reason: str = ""
    how: str = ""


class LemmaCache:
    """Lemma outcomes by (header, normalised statement), shared by every attempt of a run; concurrent requests for
    the same statement wait for one proof. Only proved and refuted outcomes stay cached (a failure may be the
    budget's doing)."""

    def __init__(self) -> None:
        self._entries: dict[str, asyncio.Future[LemmaOutcome]] = {}
        self.lookups = 0
        self.hits = 0

    @staticmethod
    def key(header: str, statement: str) -> str:
        """The cache key of a lemma statement under ``header``."""
        digest = hashlib.sha256(header.encode("utf-8")).hexdigest()[:16]
        return digest + "\x00" + normalise_statement(statement)

    @property
    def hit_rate(self) -> float:
        """Hits over lookups (0 when nothing was looked up)."""
        return self.hits / self.lookups if self.lookups else 0.0

    async def get_or_prove(self, key: str, prove: Callable[[], Awaitable[LemmaOutcome]]) -> LemmaOutcome:
        """The outcome for ``key``, computing it with ``await prove()`` when no usable entry exists."""
        self.lookups += 1
        while (future := self._entries.get(key)) is not None:
            try:
                outcome = await asyncio.shield(future)
            except Exception:  # the sharing proof failed or was cancelled; prove it ourselves
                if self._entries.get(key) is future:
                    del self._entries[key]
                continue
            if outcome.status != "failed":
                self.hits += 1
                return outcome
            break
        future = asyncio.get_running_loop().create_future()
        self._entries[key] = future
        try:
            outcome = await prove()
        except BaseException as exc:
            self._entries.pop(key, None)
            future.set_exception(RuntimeError(f"lemma proof did not finish: {exc!r}"))
            future.exception()
            raise
        future.set_result(outcome)
        if outcome.status == "failed":
            self._entries.pop(key, None)
        return outcome


class StepSpend:
    """What one agent step spent so far, checked against the attempt's budget chain (``ctx.meter``)."""

    def __init__(self, meter: Any) -> None:
        self.meter = meter
        self.usage = Usage()
        self.lean_calls = 0

    def add(self, usage: Usage, *, lean_calls: int = 0) -> None:
        """Count ``usage`` (and the Lean checks behind it) as spent by this step."""
        self.usage = self.usage + usage
        self.lean_calls += lean_calls

    def exhausted(self) -> str | None:
        """The first spent limit, counting this step's own spending, or ``None`` while work may continue."""
        meter = self.meter
        while meter is not None:
            b = meter.budget
            if b.samples is not None and meter.samples + self.usage.samples >= b.samples:
                return "samples"
            if b.tokens is not None and meter.tokens + self.usage.tokens >= b.tokens:
                return "tokens"
            if b.lean_cpu_seconds is not None and meter.lean_cpu_seconds + self.usage.lean_cpu_seconds >= (
                b.lean_cpu_seconds
            ):
                return "lean_cpu_seconds"
            meter = meter.parent
        left = self.meter.remaining_wall_seconds() if self.meter is not None else None
        if left is not None and left <= 0:
            return "wall_seconds"
        return None


@dataclass(slots=True)
class Sketch:
    """One skeleton for a problem: the model's code (empty when none was extracted), the plan, and the check."""

    problem: Problem
    code: str
    plan: str = ""
    raw_output: str = ""
    check: SkeletonCheck | None = None
    reason: str = ""


@dataclass(slots=True)
class HolesResult:
    """The holes of a checked skeleton proved (or not): ``status``, the assembled code when proved, the refuted
    step's statement or why it failed, and how each lemma was settled."""

    status: Status
    code: str = ""
    reason: str = ""
    lemmas: list[dict[str, Any]] = field(default_factory=list)


class Decomposer:
    """The decomposition machinery shared by the decompose workflow's agents and by ``--repair``."""

    def __init__(self, settings: DecomposeSettings, cache: LemmaCache | None = None) -> None:
        self.settings = settings
        self.cache = cache or LemmaCache()

    # --- LLM calls -------------------------------------------------------------------------------------------

    async def _complete(self, ctx: RunContext[ProverDeps], text: str, spend: StepSpend, seed: int | None) -> str:
        from malot.llm import GenerationRequest, SamplingParams

        deps = ctx.deps
        params = SamplingParams(
            n=1,
            temperature=deps.sampling.temperature,
            top_p=deps.sampling.top_p,
            max_tokens=max(1, deps.sampling.max_tokens),
            seed=seed,
        )
        prompt = prompts.as_request_prompt(text, deps.template.kind)
        [result] = await deps.llm.generate([GenerationRequest(prompt=prompt, params=params)])
        completion = result.completions[0]
        spend.add(Usage(samples=1, tokens_in=int(result.prompt_tokens), tokens_out=int(completion.tokens), llm_calls=1))
        return str(completion.text)

    async def sketch(
        self,
        ctx: RunContext[ProverDeps],
        problem: Problem,
        spend: StepSpend,
        *,
        plan: str | None = None,
        previous: str = "",
        reason: str = "",
        seed: int | None = None,
    ) -> Sketch:
        """Ask for a plan (unless given or disabled) and a skeleton of ``problem``; a revision shows the previous
        skeleton and why it was rejected."""
        from malot.provers.extraction import extract_lean

        values = {"header": problem.header, "statement": problem.statement, "informal": problem.informal or ""}
        if plan is None:
            plan = ""
            if self.settings.plan:
                plan = (await self._complete(ctx, prompts.render(prompts.PLAN_PROMPT, **values), spend, seed)).strip()
        step_form = "have h : claim := by sorry" if statement_mode(problem.statement) else "have h : claim := sorry"
        revision = prompts.REVISION.render(previous=previous, reason=reason) if previous or reason else ""
        text = prompts.render(
            prompts.SKELETON_PROMPT, **values, plan=plan or "(no plan)", step_form=step_form, revision=revision
        )
        raw = await self._complete(ctx, text, spend, seed)
        extraction = extract_lean(raw)
        return Sketch(problem, extraction.code or "", plan, raw, reason=extraction.reason or "")

    # --- Lean ------------------------------------------------------------------------------------------------

    async def check(self, ctx: RunContext[ProverDeps], sketch: Sketch, spend: StepSpend) -> SkeletonCheck:
        """Check the sketch's skeleton (compiles with only its ``sorry`` holes; the goals at them)."""
        if not sketch.code.strip():
            result = SkeletonCheck(False, "", reasons=[sketch.reason or "the answer had no Lean code block"])
        else:
            result = await check_skeleton(
                ctx.deps.verifier, sketch.problem.target(), sketch.code, timeout=ctx.deps.lean_timeout
            )
        spend.add(Usage(lean_cpu_seconds=result.lean_cpu_s), lean_calls=result.lean_calls)
        sketch.check = result
        return result

    async def _accepted(
        self, ctx: RunContext[ProverDeps], header: str, items: Sequence[tuple[str, str]], spend: StepSpend
    ) -> list[bool]:
        """Check (statement, proof body) pairs with the acceptance rule in one batch."""
        from malot.lean.acceptance import TargetTheorem, verify_candidates

        if not items:
            return []
        targets = [(TargetTheorem(header=header, statement=s), body) for s, body in items]
        results = await verify_candidates(ctx.deps.verifier, targets, ctx.deps.rule, ctx.deps.lean_timeout)
        cpu = sum(float(r.cpu_s if r.cpu_s is not None else r.time_s) for r in results if r.status != "screened")
        spend.add(Usage(lean_cpu_seconds=cpu), lean_calls=sum(1 for r in results if r.status != "screened"))
        return [bool(r.accepted) for r in results]

    # --- lemmas ----------------------------------------------------------------------------------------------

    def specs(self, problem: Problem, check: SkeletonCheck) -> list[LemmaSpec]:
        """One lemma per hole of a checked skeleton, named after the problem."""
        tactic = statement_mode(problem.statement)
        return [
            lemma_from_goal(goal, f"{_base(problem.name)}_step{i + 1}", tactic=tactic)
            for i, goal in enumerate(check.goals)
        ]

    async def prove_holes(
        self, ctx: RunContext[ProverDeps], problem: Problem, check: SkeletonCheck, spend: StepSpend, depth: int
    ) -> HolesResult:
        """Prove every hole of ``check`` in parallel (at most ``parallel`` at once) and assemble the proof."""
        specs = self.specs(problem, check)
        gate = asyncio.Semaphore(self.settings.parallel)

        async def one(spec: LemmaSpec) -> LemmaOutcome:
            async with gate:
                return await self.prove_lemma(ctx, problem.header, spec, spend, depth)

        outcomes = await asyncio.gather(*(one(s) for s in specs))
        report = [
            {"lemma": s.name, "statement": s.statement, "status": o.status, "how": o.how}
            for s, o in zip(specs, outcomes, strict=True)
        ]
        for spec, outcome in zip(specs, outcomes, strict=True):
            if outcome.status == "refuted":
                return HolesResult("refuted", reason=f"the step `{spec.goal}` is false", lemmas=report)
        for spec, outcome in zip(specs, outcomes, strict=True):
            if outcome.status == "failed":
                return HolesResult("failed", reason=f"no proof of {spec.goal}: {outcome.reason}", lemmas=report)
        declarations: list[str] = []
        seen: set[str] = set()
        calls: list[str] = []
        for spec, outcome in zip(specs, outcomes, strict=True):
            assert outcome.lemma is not None
            for decl in outcome.lemma.declarations:
                if decl not in seen:
                    seen.add(decl)
                    declarations.append(decl)
            calls.append(spec.call(outcome.lemma.name))
        code = assemble(check.code, check.holes, calls, declarations, statement_start=len(problem.header))
        return HolesResult("proved", code=code, lemmas=report)

    async def prove_lemma(
        self, ctx: RunContext[ProverDeps], header: str, spec: LemmaSpec, spend: StepSpend, depth: int
    ) -> LemmaOutcome:
        """Prove one lemma (cached by its normalised statement; see the module docstring for the order)."""

        async def prove() -> LemmaOutcome:
            return await self._prove_lemma(ctx, header, spec, spend, depth)

        return await self.cache.get_or_prove(LemmaCache.key(header, spec.statement), prove)

    async def _prove_lemma(
        self, ctx: RunContext[ProverDeps], header: str, spec: LemmaSpec, spend: StepSpend, depth: int
    ) -> LemmaOutcome:
        s = self.settings
        tactic = spec.statement.rstrip().endswith("by")
        automation = list(s.automation)
        if automation:
            ok = await self._accepted(ctx, header, [(spec.statement, a) for a in automation], spend)
            for body, good in zip(automation, ok, strict=True):
                if good:
                    return LemmaOutcome("proved", _lemma(spec.name, spec.statement, body, tactic), how="automation")
            if s.refute:
                negated = spec.negated(s.negation, spec.name + "_false")
                if any(await self._accepted(ctx, header, [(negated, a) for a in automation], spend)):
                    return LemmaOutcome("refuted", reason="automation proved its negation", how="automation")
        sub = Problem(name=spec.name, header=header, statement=spec.statement)
        for sample in range(s.lemma_samples):
            if (stop := spend.exhausted()) is not None:
                return LemmaOutcome("failed", reason=f"budget ({stop}) spent", how="budget")
            proof = await self._sub_prove(ctx, sub, spend, sample)
            if proof is not None:
                return LemmaOutcome("proved", ProvedLemma(spec.name, (proof,)), how="sub-strategy")
        if s.refute:
            negated_problem = Problem(
                name=spec.name + "_false", header=header, statement=spec.negated(s.negation, spec.name + "_false")
            )
            for sample in range(s.refute_samples):
                if spend.exhausted() is not None:
                    break
                if await self._sub_prove(ctx, negated_problem, spend, sample, rounds=0) is not None:
                    return LemmaOutcome("refuted", reason="the model proved its negation", how="refutation")
        if depth < s.max_depth and spend.exhausted() is None:
            proved = await self.decompose(ctx, sub, spend, depth + 1)
            if proved is not None:
                return LemmaOutcome("proved", proved, how=f"decomposed (depth {depth + 1})")
            return LemmaOutcome("failed", reason="its own decomposition failed", how="decomposition")
        stop = spend.exhausted()
        reason = f"budget ({stop}) spent" if stop else "no sample proved it and the depth limit was reached"
        return LemmaOutcome("failed", reason=reason, how="budget" if stop else "depth")

    async def _sub_prove(
        self, ctx: RunContext[ProverDeps], problem: Problem, spend: StepSpend, sample: int, rounds: int | None = None
    ) -> str | None:
        """Run the sub-strategy once on ``problem``: a sample, verified, then (MA-LoT) corrections; the accepted
        declaration, or ``None``."""
        from malot.provers.agents import CorrectorAgent, LoTProverAgent, ProofFeedback, VerifierAgent, WholeProofAgent

        deps = replace(ctx.deps, problem=problem, target=problem.target(), demos=())
        sub_ctx: RunContext[ProverDeps] = RunContext(
            deps=deps, group_id=ctx.group_id, attempt_id=ctx.attempt_id, meter=ctx.meter
        )
        ma_lot = self.settings.sub_strategy == "ma-lot"
        n_rounds = (self.settings.lemma_rounds if ma_lot else 0) if rounds is None else rounds
        task = Task(problem_id=problem.name, statement=problem.statement, header=problem.header)
        task = task.model_copy(update={"params": {"sample": sample}})
        prover = LoTProverAgent() if ma_lot else WholeProofAgent()
        candidate: ProofCandidate = await prover.run(task, sub_ctx)
        for round_ in range(n_rounds + 1):
            spend.add(candidate.usage)
            feedback = await VerifierAgent().run(candidate, sub_ctx)
            spend.add(feedback.usage, lean_calls=1 if feedback.lean_called else 0)
            if feedback.outcome == "verified":
                return _declaration(feedback.checked_code or "", problem.header)
            if round_ == n_rounds or not deps.template.supports_correction or spend.exhausted() is not None:
                return None
            sub_ctx.history.extend([candidate, feedback])
            assert isinstance(feedback, ProofFeedback)
            candidate = await CorrectorAgent().run(feedback, sub_ctx)
        return None

    async def decompose(
        self, ctx: RunContext[ProverDeps], problem: Problem, spend: StepSpend, depth: int
    ) -> ProvedLemma | None:
        """Decompose a lemma that resisted direct proof: sketch, check, prove its holes (revising the skeleton
        after a compile error or a refuted step, as many times as the attempt has rounds)."""
        previous, reason = "", ""
        plan: str | None = None
        revisions = max(0, int(ctx.deps.rounds))
        for _ in range(revisions + 1):
            if spend.exhausted() is not None:
                return None
            sketch = await self.sketch(ctx, problem, spend, plan=plan, previous=previous, reason=reason)
            plan = sketch.plan
            check = await self.check(ctx, sketch, spend)
            if not check.ok:
                previous, reason = sketch.code, _why(check)
                continue
            if not check.holes:
                return ProvedLemma(problem.name, (_declaration(check.code, problem.header),))
            holes = await self.prove_holes(ctx, problem, check, spend, depth)
            if holes.status == "proved":
                return ProvedLemma(problem.name, (_declaration(holes.code, problem.header),))
            if holes.status == "failed":
                return None
            previous, reason = sketch.code, holes.reason
        return None


def _why(check: SkeletonCheck) -> str:
    """Why a skeleton was rejected, for the revision prompt."""
    from malot.provers.feedback import format_errors

    return format_errors(check.errors, check.reasons) if check.errors else "\n".join(check.reasons)


def _base(name: str) -> str:
    return name.replace(".", "_")


def _lemma(name: str, statement: str, body: str, tactic: bool) -> ProvedLemma:
    sep = "\n  " if tactic else " "
    return ProvedLemma(name, (statement + sep + body,))


def _declaration(code: str, header: str) -> str:
    """The declarations of a checked file: the code after the header, without trailing ``#print`` commands."""
    text = code[len(header) :] if header and code.startswith(header) else code
    lines = [ln for ln in text.rstrip().split("\n") if not ln.startswith("#print axioms")]
    return "\n".join(lines).strip("\n")
