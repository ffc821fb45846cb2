"""The Python API: :class:`Prover` (an async context manager owning the LLM, the verifier and the executor) and
:func:`prove` (one call, one problem), both answering with a :class:`ProofResult`.

::

    async with Prover(settings) as prover:
        result = await prover.prove("theorem foo : 1 + 1 = 2 := by")
        print(result.proved, result.proof)
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from malot.agents import Budget, Executor, JsonlTraceWriter
from malot.config import Settings, load_settings
from malot.errors import BudgetExhaustedError, ConfigError, MalotError
from malot.provers.agents import ProofCandidate, ProofFeedback, ProverDeps, Sampling
from malot.provers.batching import RequestBatcher
from malot.provers.demos import Demo, DemoSource
from malot.provers.presets import DEFAULT_PRESET, Preset, get_preset, preset_for_model
from malot.provers.problem import Problem, load_problem
from malot.provers.strategies import Strategy, make_strategy
from malot.provers.templates import ModelTemplate, load_template
from malot.resources import AsyncResource

if TYPE_CHECKING:
    from malot.lean.base import Verifier
    from malot.llm.base import LLM, SupportsGenerate
    from malot.retrieval.base import Retriever

__all__ = [
    "AttemptSummary",
    "ProofResult",
    "Prover",
    "ResolvedSetup",
    "attempt_timings",
    "prove",
    "resolve_setup",
    "trace_summary",
    "verifier_concurrency",
]

EventCallback = Callable[[dict[str, Any]], None]


class AttemptSummary(BaseModel):
    """One attempt (one initial sample and its correction chain): how it ended and each verifier verdict."""

    index: int
    status: str
    rounds: int = 0
    verdicts: list[str] = Field(default_factory=list)
    last_error: str | None = None
    reason: str | None = None
    wall_s: float = 0.0
    llm_s: float = 0.0
    lean_s: float = 0.0
    wait_s: float = 0.0
    overhead_ms: float = 0.0


class ProofResult(BaseModel):
    """The outcome of proving one problem.

    ``proof`` is the accepted Lean file (header, original statement, proof) when ``proved``. ``summary`` holds the
    trace figures, including ``mean_framework_overhead_ms_per_attempt``: attempt wall time minus LLM calls, Lean
    checks, and waits for a free LLM or Lean slot (what remains is malot's own work: prompts, extraction,
    feedback, routing, tracing).
    """

    problem: str
    statement: str
    proved: bool
    proof: str | None = None
    proof_round: int | None = None
    strategy: str
    model: str
    template: str
    samples: int
    rounds: int
    attempts: list[AttemptSummary] = Field(default_factory=list)
    lean_checks: int = 0
    wall_s: float = 0.0
    usage: dict[str, Any] = Field(default_factory=dict)
    stopped: str | None = None
    trace_path: str | None = None
    summary: dict[str, Any] = Field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """0 when proved, 1 otherwise (the CLI's convention)."""
        return 0 if self.proved else 1


@dataclass(frozen=True, slots=True)
class ResolvedSetup:
    """What a run uses after settings, preset and explicit arguments are combined."""

    model: str
    strategy: str
    template: ModelTemplate
    sampling: Sampling
    samples: int
    rounds: int
    preset: Preset | None


def resolve_setup(
    settings: Settings,
    *,
    strategy: str | None = None,
    template: str | None = None,
    samples: int | None = None,
    rounds: int | None = None,
) -> ResolvedSetup:
    """Combine explicit arguments > settings explicitly set > the model's preset > built-in defaults."""
    prover = settings.prover
    explicit = prover.model_fields_set
    model_set = "model" in settings.llm.model_fields_set
    preset: Preset | None
    if prover.preset:
        preset = get_preset(prover.preset)
    elif not model_set:  # nothing chosen: the default preset (its model is llm.model's default)
        preset = get_preset(DEFAULT_PRESET)
    else:
        preset = preset_for_model(settings.llm.model)
    model = settings.llm.model
    if preset is not None and not model_set:
        model = preset.model
    chosen_strategy = strategy or (prover.strategy if "strategy" in explicit or preset is None else preset.strategy)
    if template is None:
        template = prover.template or (preset.template if preset is not None else None)
    if template is None:
        template = "lot-solver" if chosen_strategy == "ma-lot" else "deepseek-prover-v1.5"

    def pick(name: str) -> Any:
        if name in explicit or preset is None:
            return getattr(prover, name)
        return getattr(preset, name)

    sampling = Sampling(
        temperature=float(pick("temperature")),
        top_p=float(pick("top_p")),
        max_tokens=int(pick("max_tokens")),
        thought_share=prover.thought_share,
        seed=prover.seed,
    )
    return ResolvedSetup(
        model=model,
        strategy=chosen_strategy,
        template=load_template(template),
        sampling=sampling,
        samples=samples if samples is not None else prover.samples,
        rounds=rounds if rounds is not None else prover.rounds,
        preset=preset,
    )


class _Sink:
    """Trace sink fanning events out to a JSONL file, a progress callback and per-group buffers."""

    def __init__(self, path: Path | None, callback: EventCallback | None) -> None:
        self.writer = JsonlTraceWriter(path) if path is not None else None
        self.callback = callback
        self.groups: dict[str, list[dict[str, Any]]] = {}

    def emit(self, event: dict[str, Any]) -> None:
        if self.writer is not None:
            self.writer.emit(event)
        buffer = self.groups.get(str(event.get("group_id")))
        if buffer is not None:
            buffer.append(event)
        if self.callback is not None:
            self.callback(event)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class Prover(AsyncResource):
    """An embeddable prover: owns (or borrows) an LLM and a Lean verifier, and runs strategies on one executor.

    ``settings`` default to :func:`malot.config.load_settings` (``malot.toml``, ``MALOT_*`` variables). Pass ``llm``
    or ``verifier`` objects to use your own (they are then not closed by the prover); otherwise they are built from
    the settings when the prover is entered. ``trace`` is a JSONL file receiving every step of every proof;
    ``on_event`` is called with each trace event (for live progress). ``demos`` overrides demonstration retrieval.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        llm: LLM | None = None,
        verifier: Verifier | None = None,
        retriever: Retriever | None = None,
        demos: Sequence[Mapping[str, str]] | None = None,
        strategy: str | None = None,
        template: str | None = None,
        trace: str | Path | None = None,
        on_event: EventCallback | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self._llm = llm
        self._verifier = verifier
        self._own_llm = llm is None
        self._own_verifier = verifier is None
        self._demo_source = DemoSource(self.settings.retrieval, retriever)
        self._demos = [dict(d) for d in demos] if demos is not None else None
        self._strategy = strategy
        self._template = template
        self.trace_path = Path(trace) if trace is not None else None
        self._sink = _Sink(self.trace_path, on_event)
        self._executor: Executor | None = None
        self._batcher: RequestBatcher | None = None
        self._rule: Any = None

    @property
    def llm(self) -> LLM | None:
        """The LLM in use (after entering)."""
        return self._llm

    @property
    def verifier(self) -> Verifier | None:
        """The verifier in use (after entering)."""
        return self._verifier

    async def open(self) -> None:
        """Start the verifier and the model (unless given), the request batcher and the executor."""
        # Lean first: it is cheap to start and fails fast; the model may take minutes to load
        if self._verifier is None:
            from malot.lean import load_verifier

            self._verifier = load_verifier(self.settings.lean)
            await self._verifier.__aenter__()
        if self._llm is None:
            from malot.llm import load_llm

            model = resolve_setup(self.settings, strategy=self._strategy, template=self._template).model
            llm_settings = self.settings.llm.model_copy(update={"model": model})
            self._llm = load_llm(llm_settings)
            await self._llm.__aenter__()
        self._batcher = RequestBatcher(self._llm)
        from malot.lean.acceptance import AcceptanceRule

        self._rule = AcceptanceRule.from_settings(self.settings.lean)
        ex = self.settings.executor
        lean_slots = (
            ex.lean_slots
            or verifier_concurrency(self._verifier)
            or self.settings.lean.pool_size
            or max(1, (os.cpu_count() or 2) - 1)
        )
        self._executor = Executor(
            limits={"llm": ex.llm_slots, "lean": lean_slots},
            trace=self._sink,
            attempt_timeout=ex.attempt_timeout_s,
        )

    async def aclose(self) -> None:
        """Close what the prover owns (the LLM and verifier it built) and flush the trace."""
        if self._batcher is not None:
            batcher, self._batcher = self._batcher, None
            await batcher.aclose()
        if self._executor is not None:
            self._executor.close()
            self._executor = None
        else:
            self._sink.close()
        if self._own_verifier and self._verifier is not None:
            verifier, self._verifier = self._verifier, None
            await verifier.aclose()
        if self._own_llm and self._llm is not None:
            llm, self._llm = self._llm, None
            await llm.aclose()

    @contextlib.asynccontextmanager
    async def override(self, *, llm: LLM | None = None, verifier: Verifier | None = None) -> AsyncIterator[Prover]:
        """Use ``llm`` and/or ``verifier`` instead of the prover's own for the proofs started inside the block.

        For tests (as pydantic-ai's ``Agent.override``): swap in a scripted or gated model, or another verifier,
        on a prover that is already open. Proofs already running keep what they started with; on exit the
        prover's own model and verifier are back. The overriding objects are used as given (not closed).
        """
        if self._executor is None:
            raise ConfigError("the prover is not open", hint="use 'async with Prover(...) as prover:'")
        saved = (self._llm, self._verifier, self._batcher)
        batcher: RequestBatcher | None = None
        if llm is not None:
            batcher = RequestBatcher(llm)
            self._llm, self._batcher = llm, batcher
        if verifier is not None:
            self._verifier = verifier
        try:
            yield self
        finally:
            self._llm, self._verifier, self._batcher = saved
            if batcher is not None:
                await batcher.aclose()

    def _demonstrations(self, problem: Problem, template: ModelTemplate) -> list[Demo]:
        if self._demos is not None:
            return [dict(d) for d in self._demos if d.get("name") != problem.name]
        return self._demo_source.pick(problem, template.uses_demonstrations)

    async def prove(
        self,
        problem: Problem | str,
        *,
        strategy: str | Strategy | None = None,
        samples: int | None = None,
        rounds: int | None = None,
        budget: Budget | None = None,
        group_id: str | None = None,
        max_tokens: int | None = None,
    ) -> ProofResult:
        """Prove one problem (a :class:`Problem`, ``minif2f:NAME`` or a statement string). ``max_tokens`` caps each
        generation for this call (default: ``[prover] max_tokens`` or the model preset's)."""
        if self._executor is None:
            raise ConfigError("the prover is not open", hint="use 'async with Prover(...) as prover:'")
        if isinstance(problem, str):
            problem = load_problem(problem)
        name = strategy.name if isinstance(strategy, Strategy) else (strategy or self._strategy)
        setup = resolve_setup(self.settings, strategy=name, template=self._template, samples=samples, rounds=rounds)
        if max_tokens is not None:
            if max_tokens < 1:
                raise ConfigError(f"max_tokens must be at least 1, got {max_tokens}")
            setup = dataclasses.replace(setup, sampling=dataclasses.replace(setup.sampling, max_tokens=max_tokens))
        if isinstance(strategy, Strategy):
            strat = strategy
        else:
            strat = make_strategy(setup.strategy, rounds=setup.rounds, settings=self.settings)
        strat.check_template(setup.template)
        if samples is not None and samples < 1:
            raise ConfigError(f"samples must be at least 1, got {samples}")
        lean_settings = self.settings.lean
        llm: SupportsGenerate | None = self._batcher if self._batcher is not None else self._llm
        if llm is None:
            raise ConfigError("the prover is not open", hint="use 'async with Prover(...) as prover:'")
        deps = ProverDeps(
            llm=llm,
            verifier=self._verifier,
            problem=problem,
            template=setup.template,
            sampling=setup.sampling,
            demos=self._demonstrations(problem, setup.template),
            rounds=strat.rounds,
            rule=self._rule,
            lean_timeout=lean_settings.timeout_s,
            gate=_produced_gate(problem),
        )
        b = self.settings.budget
        group_budget = budget or Budget(
            samples=b.samples, tokens=b.tokens, lean_cpu_seconds=b.lean_cpu_seconds, wall_seconds=b.wall_seconds
        )
        gid = group_id or f"{problem.name}-{uuid.uuid4().hex[:6]}"
        events: list[dict[str, Any]] = []
        self._sink.groups[gid] = events
        self._sink.emit(
            {
                "type": "note",
                "group_id": gid,
                "time": time.time(),
                "data": {
                    "problem": problem.name,
                    "statement": problem.statement,
                    "model": setup.model,
                    "template": setup.template.name,
                    **strat.describe(),
                    "samples": setup.samples,
                    "demonstrations": [d.get("name", "") for d in deps.demos],
                },
            }
        )
        try:
            group = await self._executor.run_group(
                strat.workflow(), strat.inputs(problem, setup.samples), deps, group_id=gid, budget=group_budget
            )
        finally:
            self._sink.groups.pop(gid, None)
        stopped_first = all(a.status == "budget" for a in group.attempts)  # no attempt ran, errored or was cut
        tried = any(isinstance(m, ProofCandidate) for a in group.attempts for m in a.history)
        if group.stopped in _BUDGET_LIMITS and stopped_first and not tried:  # the budget ended it before anything
            raise BudgetExhaustedError(
                f"the {_BUDGET_LIMITS[group.stopped]} budget was spent before any proof of {problem.name} was tried",
                hint="raise it ([budget] in malot.toml, or the budget= of Prover.prove)",
            )
        errors = [a.error for a in group.attempts if a.status == "error" and a.error]
        if errors and len(errors) == len(group.attempts):
            raise MalotError(
                f"every attempt on {problem.name} failed with an error; the first: {errors[0]}",
                hint="check the model and Lean settings ('malot doctor'); the trace has every step",
            )
        return _result(problem, setup, strat, group, events, self.trace_path, deps)


#: The budget limits that can stop a group (``GroupResult.stopped``), as the user names them.
_BUDGET_LIMITS = {
    "samples": "samples",
    "tokens": "token",
    "lean_cpu_seconds": "Lean CPU-seconds",
    "wall_seconds": "wall-time",
}


def _produced_gate(problem: Problem) -> Any:
    """PutnamBench's produced-solution check for a problem whose header asks for the solution (else ``None``)."""
    if "-- Answer to produce:" not in problem.header:
        return None
    from malot.eval.putnam import produced_gate

    return produced_gate(problem.header, problem.statement, problem.name)


def verifier_concurrency(verifier: Any) -> int | None:
    """How many checks the verifier runs at once, if it says (file backend workers, REPL pool size)."""
    for name in ("workers", "size", "pool_size"):
        value = getattr(verifier, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def attempt_timings(events: Sequence[Mapping[str, Any]]) -> tuple[dict[str, dict[str, float]], int]:
    """Per attempt: seconds in LLM calls, in Lean checks, and waiting for a free LLM or Lean slot (from the step
    notes the prover agents write); plus the number of Lean checks. Works on live events and on trace files."""
    timing: dict[str, dict[str, float]] = {}
    lean_checks = 0
    for event in events:
        if event.get("type") != "step":
            continue
        slot = timing.setdefault(str(event["attempt_id"]), {"llm_s": 0.0, "lean_s": 0.0, "wait_s": 0.0})
        run_s = 0.0
        for note in event.get("notes", []):
            slot["llm_s"] += float(note.get("llm_s", 0.0))
            slot["lean_s"] += float(note.get("lean_s", 0.0))
            run_s += float(note.get("run_s", 0.0))
            lean_checks += 1 if note.get("lean_called") else 0
        if run_s:  # the rest of the step's duration was spent waiting for an LLM or Lean slot
            slot["wait_s"] += max(0.0, float(event.get("duration_s", 0.0)) - run_s)
    return timing, lean_checks


def trace_summary(path: str | Path) -> dict[str, Any]:
    """:meth:`malot.agents.Trace.summary` of a prover trace file, plus the framework overhead per attempt.

    ``mean_framework_overhead_ms_per_attempt`` is attempt wall time minus LLM calls, Lean checks and slot waits:
    malot's own cost (prompt rendering, extraction, feedback, routing, tracing).
    """
    import json

    from malot.agents import read_trace

    summary = read_trace(path).summary()
    with Path(path).open(encoding="utf-8") as fh:
        events = [json.loads(line) for line in fh if line.strip()]
    timing, lean_checks = attempt_timings(events)
    overheads = []
    for event in events:
        if event.get("type") == "attempt_finished":
            t = timing.get(str(event["attempt_id"]), {"llm_s": 0.0, "lean_s": 0.0, "wait_s": 0.0})
            overheads.append(1000 * max(0.0, float(event["wall_s"]) - t["llm_s"] - t["lean_s"] - t["wait_s"]))
    summary.update(
        {
            "lean_checks": lean_checks,
            "llm_s": sum(t["llm_s"] for t in timing.values()),
            "lean_s": sum(t["lean_s"] for t in timing.values()),
            "slot_wait_s": sum(t["wait_s"] for t in timing.values()),
            "mean_framework_overhead_ms_per_attempt": sum(overheads) / len(overheads) if overheads else 0.0,
            "max_framework_overhead_ms_per_attempt": max(overheads, default=0.0),
        }
    )
    return summary


def _result(
    problem: Problem,
    setup: ResolvedSetup,
    strategy: Strategy,
    group: Any,
    events: list[dict[str, Any]],
    trace_path: Path | None,
    deps: ProverDeps,
) -> ProofResult:
    timing, lean_checks = attempt_timings(events)
    attempts: list[AttemptSummary] = []
    proof: str | None = None
    proof_round: int | None = None
    for attempt in group.attempts:
        verdicts = [m.outcome for m in attempt.history if isinstance(m, ProofFeedback)]
        candidates = [m for m in attempt.history if isinstance(m, ProofCandidate)]
        failures = [m for m in attempt.history if isinstance(m, ProofFeedback) and m.outcome == "failed"]
        t = timing.get(attempt.attempt_id, {"llm_s": 0.0, "lean_s": 0.0, "wait_s": 0.0})
        overhead = max(0.0, attempt.wall_s - t["llm_s"] - t["lean_s"] - t["wait_s"])
        attempts.append(
            AttemptSummary(
                index=attempt.index,
                status=attempt.status,
                rounds=max((c.round for c in candidates), default=0),
                verdicts=verdicts,
                last_error=failures[-1].errors[0] if failures and failures[-1].errors else None,
                reason=attempt.reason or attempt.error,
                wall_s=attempt.wall_s,
                llm_s=t["llm_s"],
                lean_s=t["lean_s"],
                wait_s=t["wait_s"],
                overhead_ms=1000 * overhead,
            )
        )
    if group.success is not None and isinstance(group.success.final, ProofFeedback):
        final = group.success.final
        proof = final.checked_code or final.candidate.code
        proof_round = final.candidate.round
    overheads = [a.overhead_ms for a in attempts]
    summary = {
        "attempts": len(attempts),
        "statuses": {s: sum(1 for a in attempts if a.status == s) for s in sorted({a.status for a in attempts})},
        "candidates": sum(len(a.verdicts) for a in attempts),
        "lean_checks": lean_checks,
        "cache_hits": deps.cache.hits,
        "llm_s": sum(a.llm_s for a in attempts),
        "lean_s": sum(a.lean_s for a in attempts),
        "slot_wait_s": sum(a.wait_s for a in attempts),
        "mean_framework_overhead_ms_per_attempt": sum(overheads) / len(overheads) if overheads else 0.0,
        "max_framework_overhead_ms_per_attempt": max(overheads, default=0.0),
    }
    searches = [m.search for a in group.attempts for m in a.history if isinstance(getattr(m, "search", None), dict)]
    if searches:  # tactic-level strategies: what their searches did, summed over the attempts
        keys = ("expansions", "tactic_calls", "cache_hits", "nodes", "merges", "rejected")
        summary["search"] = {k: sum(int(s.get(k, 0)) for s in searches) for k in keys}
    return ProofResult(
        problem=problem.name,
        statement=problem.statement,
        proved=group.solved,
        proof=proof,
        proof_round=proof_round,
        strategy=strategy.name,
        model=setup.model,
        template=setup.template.name,
        samples=setup.samples,
        rounds=strategy.rounds,
        attempts=attempts,
        lean_checks=lean_checks,
        wall_s=group.wall_s,
        usage=group.usage.model_dump(),
        stopped=group.stopped,
        trace_path=str(trace_path) if trace_path is not None else None,
        summary=summary,
    )


async def prove(
    statement: str | Problem,
    *,
    settings: Settings | None = None,
    model: str | None = None,
    lean: str | Path | None = None,
    strategy: str | None = None,
    samples: int | None = None,
    rounds: int | None = None,
    llm: LLM | None = None,
    verifier: Verifier | None = None,
    demos: Sequence[Mapping[str, str]] | None = None,
    trace: str | Path | None = None,
) -> ProofResult:
    """Prove one statement (a Lean statement string, ``minif2f:NAME`` or a :class:`Problem`) and return the result.

    ``model`` and ``lean`` override ``llm.model`` and ``lean.lean_path``; ``llm`` and ``verifier`` objects are used
    as given (and not closed). Everything else comes from ``settings`` (default: :func:`load_settings`).
    """
    overrides: dict[str, Any] = {"llm.model": model, "lean.lean_path": str(lean) if lean is not None else None}
    if settings is None:
        settings = load_settings(overrides=overrides)
    elif model is not None or lean is not None:
        data = settings.model_dump(exclude_unset=True)
        if model is not None:
            data.setdefault("llm", {})["model"] = model
        if lean is not None:
            data.setdefault("lean", {})["lean_path"] = str(lean)
        settings = Settings.model_validate(data)
    async with Prover(settings, llm=llm, verifier=verifier, demos=demos, strategy=strategy, trace=trace) as prover:
        return await prover.prove(statement, samples=samples, rounds=rounds)
