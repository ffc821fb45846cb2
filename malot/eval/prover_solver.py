"""The default solver: the provers' strategies (MA-LoT or whole-proof) run on one shared executor.

:func:`prover_solver` opens one :class:`~malot.provers.api.Prover` (which builds the LLM and the Lean verifier from
the settings) and one :class:`~malot.agents.Executor` whose ``llm``/``lean`` slot limits bound all the problems in
flight together. Each problem runs as one executor group: one attempt per sample, each a chain of candidate ->
verifier (-> corrector -> verifier ...). Unlike ``malot prove``, an evaluation by default lets every sample finish
(``first_success=False``) so pass@k is unbiased. Every verified candidate becomes one
:class:`~malot.eval.records.AttemptRecord` (sample, round, prompt hash, output, proof, verdict flags, tokens, Lean
time).
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from malot.agents import Budget, Executor, JsonlTraceWriter
from malot.config import Settings
from malot.eval.problems import BenchmarkProblem
from malot.eval.records import AttemptRecord, ProblemOutcome, prompt_hash
from malot.eval.solver import AttemptSink, ProblemBudget

__all__ = ["TRACE_NAME", "ProverSolver", "prover_solver"]

#: The executor trace of a run, next to its results store.
TRACE_NAME = "trace.jsonl"


class _PromptRecorder:
    """Wraps the shared LLM for one problem and remembers which prompt produced each completion text."""

    def __init__(self, llm: Any) -> None:
        self._llm = llm
        self.by_output: dict[str, str] = {}

    @property
    def capabilities(self) -> Any:
        return self._llm.capabilities

    async def generate(self, requests: Sequence[Any]) -> list[Any]:
        results: list[Any] = await self._llm.generate(requests)
        for request, result in zip(requests, results, strict=False):
            digest = prompt_hash(request.prompt)
            for completion in result.completions:
                self.by_output[completion.text] = digest
        return results

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llm, name)


class ProverSolver:
    """Runs the provers' strategy for each problem; see the module docstring."""

    def __init__(self, settings: Settings, prover: Any, executor: Executor) -> None:
        from malot.lean.acceptance import AcceptanceRule
        from malot.provers.api import resolve_setup

        self.settings = settings
        self.prover = prover
        self.executor = executor
        self.setup = resolve_setup(settings)
        self.strategy = self.setup.strategy
        self.rule = AcceptanceRule.from_settings(settings.lean)
        from malot.provers.demos import DemoSource

        self._demo_source = DemoSource(settings.retrieval)

    def _demos(self, problem: Any) -> list[Any]:
        return list(self._demo_source.pick(problem, self.setup.template.uses_demonstrations))

    async def solve(self, problem: BenchmarkProblem, budget: ProblemBudget, sink: AttemptSink) -> ProblemOutcome:
        """Run one executor group for ``problem`` and report one record per candidate."""
        from malot.eval.putnam import produced_gate
        from malot.provers.agents import ProofCandidate, ProofFeedback, ProverDeps
        from malot.provers.problem import Problem
        from malot.provers.strategies import make_strategy

        item = Problem(
            name=problem.name,
            header=problem.header,
            statement=problem.statement,
            informal=problem.informal,
            split=problem.split,
        )
        strategy = make_strategy(self.setup.strategy, rounds=budget.rounds, settings=self.settings)
        strategy.check_template(self.setup.template)
        recorder = _PromptRecorder(self.prover.llm)
        deps = ProverDeps(
            llm=recorder,
            verifier=self.prover.verifier,
            problem=item,
            template=self.setup.template,
            sampling=self.setup.sampling,
            demos=self._demos(item),
            rounds=strategy.rounds,
            rule=self.rule,
            lean_timeout=self.settings.lean.timeout_s,
            gate=produced_gate(item.header, item.statement, item.name),
        )
        group_budget = Budget(
            samples=None,  # samples = attempts; corrections draw more, bounded by rounds
            tokens=budget.tokens,
            lean_cpu_seconds=budget.lean_cpu_seconds,
            wall_seconds=budget.wall_seconds,
        )
        began = time.perf_counter()
        group = await self.executor.run_group(
            strategy.workflow(),
            strategy.inputs(item, budget.samples),
            deps,
            group_id=problem.name,
            budget=group_budget,
            first_success=budget.first_success,
        )
        proof: str | None = None
        for attempt in group.attempts:
            pending: ProofCandidate | None = None
            records: list[AttemptRecord] = []
            for message in attempt.history:
                if isinstance(message, ProofCandidate):
                    if pending is not None:  # a candidate that never reached the verifier
                        records.append(_record(problem.name, strategy.name, attempt, pending, None, recorder))
                    pending = message
                elif isinstance(message, ProofFeedback):
                    records.append(_record(problem.name, strategy.name, attempt, message.candidate, message, recorder))
                    if message.outcome == "verified" and proof is None:
                        proof = message.checked_code or message.candidate.code
                    pending = None
            if pending is not None:
                records.append(_record(problem.name, strategy.name, attempt, pending, None, recorder))
            _attribute_rest(records, attempt.usage)
            for record in records:
                sink(record)
            if attempt.status == "error" and not any(isinstance(m, ProofCandidate) for m in attempt.history):
                sink(
                    AttemptRecord(
                        problem=problem.name,
                        sample=attempt.index,
                        strategy=strategy.name,
                        status="error",
                        error=attempt.error,
                        wall_s=attempt.wall_s,
                    )
                )
        errors = [a.error for a in group.attempts if a.status == "error" and a.error]
        return ProblemOutcome(
            problem=problem.name,
            solved=proof is not None,
            proof=proof,
            error=errors[0] if errors and len(errors) == len(group.attempts) else None,
            stopped=group.stopped,
            wall_s=time.perf_counter() - began,
        )


def _record(
    problem: str, strategy: str, attempt: Any, candidate: Any, feedback: Any, recorder: _PromptRecorder
) -> AttemptRecord:
    raw = candidate.raw_output or ""
    flags: dict[str, Any] = {
        "extraction_error": candidate.extraction_error,
        "finish_reason": candidate.finish_reason,
        "truncated": candidate.truncated,
        "repeated": candidate.repeated,
        "llm_calls": candidate.usage.llm_calls,
    }
    thought = candidate.thought
    if thought and thought not in raw:  # two-pass (LoT) templates: the reasoning came from a first generation
        flags["thought"] = thought
    search = getattr(candidate, "search", None)
    if isinstance(search, dict) and search:
        flags["search"] = search  # tactic-search counts (expansions, tactic calls) for the ledger
    if feedback is not None:
        flags.update(feedback.details.get("flags") or {})
        flags["lean_status"] = feedback.details.get("status")
        flags["axioms"] = feedback.details.get("axioms")
        flags["lean_called"] = feedback.lean_called
        flags["reasons"] = list(feedback.reasons)
        flags["errors"] = len(feedback.messages)
    status = "unchecked" if feedback is None else str(feedback.outcome)
    if feedback is None and attempt.status in ("cancelled", "budget", "timeout"):
        status = attempt.status
    return AttemptRecord(
        problem=problem,
        sample=int(candidate.sample),
        round=int(candidate.round),
        strategy=strategy,
        prompt_hash=recorder.by_output.get(raw, ""),
        output=raw,
        proof=(feedback.checked_code if feedback is not None and feedback.checked_code else candidate.code),
        verified=feedback is not None and feedback.outcome == "verified",
        status=status,
        flags=flags,
        error=(feedback.errors[0] if feedback is not None and feedback.errors else None),
        tokens_in=candidate.usage.tokens_in,
        tokens_out=candidate.usage.tokens_out,
        lean_s=float(feedback.time_s) if feedback is not None and feedback.lean_called else 0.0,
        lean_cpu_s=float(feedback.usage.lean_cpu_seconds) if feedback is not None else 0.0,
        wall_s=attempt.wall_s,
    )


def _attribute_rest(records: list[AttemptRecord], usage: Any) -> None:
    """Add what an attempt spent outside its recorded candidates and verdicts (a strategy's intermediate steps:
    plans, lemma proofs that ended in a revision, ...) to its last record, so the ledger sums to the executor's
    count; the added part is also kept in ``flags["unrecorded"]``."""
    if not records:
        return
    rest: dict[str, float] = {
        "tokens_in": int(usage.tokens_in) - sum(r.tokens_in for r in records),
        "tokens_out": int(usage.tokens_out) - sum(r.tokens_out for r in records),
        "llm_calls": int(usage.llm_calls) - sum(int(r.flags.get("llm_calls") or 0) for r in records),
        "lean_cpu_s": float(usage.lean_cpu_seconds) - sum(r.lean_cpu_s for r in records),
    }
    if all(v <= 1e-9 for v in rest.values()):
        return
    last = records[-1]
    last.tokens_in += max(0, int(rest["tokens_in"]))
    last.tokens_out += max(0, int(rest["tokens_out"]))
    last.lean_cpu_s += max(0.0, rest["lean_cpu_s"])
    last.flags["llm_calls"] = int(last.flags.get("llm_calls") or 0) + max(0, int(rest["llm_calls"]))
    last.flags["unrecorded"] = {k: v for k, v in rest.items() if v > 1e-9}


@asynccontextmanager
async def prover_solver(settings: Settings, *, llm: Any = None, verifier: Any = None) -> AsyncIterator[ProverSolver]:
    """The default solver factory: one Prover (LLM + Lean verifier) and one executor for the whole run.

    ``llm`` / ``verifier`` objects, when given, are used instead of building them from the settings (and are not
    closed), e.g. a :class:`~malot.llm.fake.ScriptedLLM` answering from a function in tests. With
    ``output.trace`` on, every executor event is appended to ``<output.dir>/trace.jsonl`` (the runner points
    ``output.dir`` at the run folder).
    """
    from malot.provers.api import Prover

    ex = settings.executor
    lean_slots = ex.lean_slots or settings.lean.pool_size or max(1, (os.cpu_count() or 2) - 1)
    trace = JsonlTraceWriter(Path(settings.output.dir) / TRACE_NAME) if settings.output.trace else None
    async with Prover(settings, llm=llm, verifier=verifier) as prover:
        executor = Executor(
            limits={"llm": ex.llm_slots, "lean": lean_slots}, trace=trace, attempt_timeout=ex.attempt_timeout_s
        )
        try:
            yield ProverSolver(settings, prover, executor)
        finally:
            executor.close()
