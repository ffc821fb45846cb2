"""The prover agents: LoT prover, whole-proof prover, corrector and verifier, built on :mod:`malot.agents`.

Every agent gets its services from ``ctx.deps`` (a :class:`ProverDeps`): the LLM, the verifier, the problem, the
prompt template, sampling parameters and demonstrations. One attempt draws one sample; the executor runs ``n``
attempts concurrently (the LLM backend batches them, sharing the prompt prefix).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import Field

from malot.agents import Agent, LeanCandidate, Message, RunContext, Task, Usage, VerifierFeedback
from malot.errors import LLMError
from malot.provers.demos import Demo
from malot.provers.extraction import Extraction, extract_infill, extract_lean
from malot.provers.feedback import (
    format_errors,
    format_history,
    format_thought,
    mark_errors,
    messages_of,
    summarize_errors,
)
from malot.provers.problem import Problem
from malot.provers.templates import ModelTemplate, RenderedPrompt, open_lean_block

if TYPE_CHECKING:
    from malot.lean.acceptance import AcceptanceRule
    from malot.llm.base import SupportsGenerate

__all__ = [
    "CorrectorAgent",
    "GateVerdict",
    "LoTProverAgent",
    "ProofCandidate",
    "ProofFeedback",
    "ProverDeps",
    "Sampling",
    "VerdictCache",
    "VerifierAgent",
    "WholeProofAgent",
]


class ProofCandidate(LeanCandidate):
    """A candidate proof with how it was extracted. ``code`` is empty when the output had no Lean block."""

    extraction_error: str | None = None
    finish_reason: str = "stop"
    truncated: bool = False
    repeated: bool = False

    def summary(self) -> dict[str, Any]:
        data = super().summary()
        if data.get("raw_output") and len(data["raw_output"]) > 4000:
            data["raw_output"] = data["raw_output"][:2000] + "\n...\n" + data["raw_output"][-2000:]
        if data.get("thought") and len(data["thought"]) > 2000:
            data["thought"] = data["thought"][:1000] + "\n...\n" + data["thought"][-1000:]
        return data


class ProofFeedback(VerifierFeedback):
    """The verifier's verdict: ``outcome`` ``verified`` or ``failed``; ``messages`` are Lean's errors as dicts."""

    lean_called: bool = False
    messages: list[dict[str, Any]] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)
    checked_code: str = ""
    time_s: float = 0.0


@dataclass(slots=True)
class Sampling:
    """Sampling parameters for every LLM call of a run (defaults follow the MA-LoT code)."""

    temperature: float = 0.8
    top_p: float = 0.8
    max_tokens: int = 8192
    thought_share: float = 0.75
    seed: int | None = None

    def seed_for(self, sample: int, round_: int) -> int | None:
        """A distinct seed per sample and round (``None`` when unseeded)."""
        return None if self.seed is None else self.seed + 1000 * round_ + sample


class _Retry(Exception):
    """Internal: the check a waiter was sharing failed or was cancelled; the waiter checks by itself."""


class VerdictCache:
    """Lean verdicts by candidate code, so identical candidates (common at low temperature) are checked once.

    Concurrent requests for the same code share one check; if that check fails or is cancelled (a sibling attempt
    stopped), the waiters run their own.
    """

    def __init__(self) -> None:
        self._results: dict[str, asyncio.Future[Any]] = {}
        self.hits = 0

    async def get_or_check(self, code: str, check: Callable[[], Awaitable[Any]]) -> tuple[Any, bool]:
        """The verdict for ``code``, computing it with ``await check()`` the first time; (result, was_cached)."""
        while (future := self._results.get(code)) is not None:
            try:
                result = await asyncio.shield(future)
            except _Retry:
                continue
            self.hits += 1
            return result, True
        future = asyncio.get_running_loop().create_future()
        self._results[code] = future
        try:
            result = await check()
        except BaseException:
            self._results.pop(code, None)
            future.set_exception(_Retry())
            future.exception()  # mark it retrieved; waiters (if any) retry by themselves
            raise
        future.set_result(result)
        return result, False


@dataclass(frozen=True, slots=True)
class GateVerdict:
    """A gate's verdict on a candidate: the reasons to reject it (empty: go on to Lean) and, when the gate moves
    part of the candidate into the problem (a produced answer becomes part of the statement's context), the
    target and the code Lean checks instead of the problem's target and the candidate's code."""

    reasons: list[str]
    target: Any = None
    code: str | None = None


@dataclass(slots=True)
class ProverDeps:
    """What the prover agents use: the services and the problem of one proving run."""

    llm: SupportsGenerate
    verifier: Any  # a Verifier; search strategies also pass proof sessions through here
    problem: Problem
    template: ModelTemplate
    sampling: Sampling = field(default_factory=Sampling)
    demos: Sequence[Demo] = ()
    rounds: int = 2
    rule: AcceptanceRule | None = None
    lean_timeout: float | None = None
    cache: VerdictCache = field(default_factory=VerdictCache)
    target: Any = None
    #: Extra rule run on a candidate's code before Lean (e.g. PutnamBench's produced-solution check): the reasons
    #: to reject it (empty to go on), or a :class:`GateVerdict` that also says which target and code Lean checks.
    gate: Callable[[str], list[str] | GateVerdict] | None = None

    def __post_init__(self) -> None:
        if self.target is None:
            self.target = self.problem.target()

    @property
    def values(self) -> dict[str, Any]:
        """The problem as template values."""
        return self.problem.model_dump()


async def _generate(
    ctx: RunContext[ProverDeps], prompt: Any, max_tokens: int, stop: Sequence[str], seed: int | None
) -> tuple[Any, int, float]:
    """One sample from the LLM: (completion, prompt tokens, seconds)."""
    from malot.llm import GenerationRequest, SamplingParams

    deps = ctx.deps
    params = SamplingParams(
        n=1,
        temperature=deps.sampling.temperature,
        top_p=deps.sampling.top_p,
        max_tokens=max(1, max_tokens),
        stop=list(stop),
        seed=seed,
    )
    began = time.perf_counter()
    results = await deps.llm.generate([GenerationRequest(prompt=prompt, params=params)])
    seconds = time.perf_counter() - began
    if not results or not results[0].completions:
        raise LLMError("the model returned no completion", hint="check the LLM backend's logs")
    return results[0].completions[0], int(results[0].prompt_tokens), seconds


class _SamplingAgent(Agent[Message, ProofCandidate]):
    """Shared by the prover, whole-proof and corrector agents: sample one candidate from a rendered prompt."""

    resource = "llm"

    def estimate(self, message: Message) -> Usage:
        return Usage(samples=1)

    async def run(self, message: Message, ctx: RunContext[ProverDeps]) -> ProofCandidate:
        started = time.perf_counter()
        rendered, round_, sample = self.render(message, ctx)
        candidate = await self.sample(ctx, rendered, round_=round_, sample=sample)
        ctx.note(run_s=time.perf_counter() - started)
        return candidate

    def render(self, message: Message, ctx: RunContext[ProverDeps]) -> tuple[RenderedPrompt, int, int]:
        """The prompt for ``message`` and the (round, sample) of the candidate it will produce."""
        raise NotImplementedError

    async def sample(
        self, ctx: RunContext[ProverDeps], rendered: RenderedPrompt, *, round_: int, sample: int
    ) -> ProofCandidate:
        """Draw one candidate; ``lot`` templates take two passes (thought, then the pre-filled Lean block)."""
        deps = ctx.deps
        s = deps.sampling
        seed = s.seed_for(sample, round_)
        llm_s = 0.0
        tokens_in = tokens_out = 0
        thought: str | None = None
        if rendered.kind == "lot":
            assert isinstance(rendered.prompt, str)
            thought_cap = max(1, int(s.max_tokens * s.thought_share))
            first, p_tokens, secs = await _generate(ctx, rendered.prompt, thought_cap, rendered.stop, seed)
            llm_s += secs
            tokens_in += p_tokens
            tokens_out += first.tokens
            thought = first.text
            output_prefix = deps.template.render_output_prefix(deps.values)
            second_prompt = rendered.prompt + thought + output_prefix
            # the proof gets what the thought left, and at least the share the thought could not take
            left = max(s.max_tokens - first.tokens, s.max_tokens - thought_cap, 1)
            second, p_tokens, secs = await _generate(ctx, second_prompt, left, deps.template.stop, seed)
            llm_s += secs
            tokens_in += p_tokens
            tokens_out += second.tokens
            completion = second
            extraction = extract_lean(
                second.text, prefill=open_lean_block(output_prefix), finish_reason=second.finish_reason
            )
            ctx.note(thought_tokens=first.tokens, thought_finish=first.finish_reason)
        else:
            completion, p_tokens, secs = await _generate(
                ctx, rendered.to_request_prompt(), s.max_tokens, rendered.stop, seed
            )
            llm_s += secs
            tokens_in += p_tokens
            tokens_out += completion.tokens
            extraction = self._extract(rendered, completion)
            if rendered.kind == "chat":
                thought = _reasoning_before_code(completion.text)
        ctx.note(
            llm_s=llm_s,
            round=round_,
            sample=sample,
            extraction=extraction.reason or "ok",
        )
        return ProofCandidate(
            outcome="candidate" if extraction.ok else "no_code",
            code=extraction.code or "",
            thought=thought,
            round=round_,
            sample=sample,
            raw_output=completion.text,
            extraction_error=extraction.reason,
            finish_reason=completion.finish_reason,
            truncated=extraction.truncated,
            repeated=extraction.repeated,
            usage=Usage(
                samples=1, tokens_in=tokens_in, tokens_out=tokens_out, llm_calls=2 if rendered.kind == "lot" else 1
            ),
        )

    @staticmethod
    def _extract(rendered: RenderedPrompt, completion: Any) -> Extraction:
        if rendered.kind == "infill":
            assert isinstance(rendered.prompt, tuple)
            prefix, suffix = rendered.prompt
            return extract_infill(prefix, completion.text, suffix, finish_reason=completion.finish_reason)
        return extract_lean(completion.text, prefill=rendered.prefill, finish_reason=completion.finish_reason)


def _reasoning_before_code(text: str) -> str | None:
    """For chat models: the text before the last Lean block (their plan or ``<think>`` section)."""
    from malot.provers.extraction import find_lean_blocks

    blocks = find_lean_blocks(text)
    head = text[: blocks[-1].fence_start] if blocks else text
    head = head.replace("<think>", "").replace("</think>", "").strip()
    return head or None


class _FirstPassAgent(_SamplingAgent):
    """Round 0 of an attempt: the template's prover prompt with demonstrations, for the task's sample index."""

    input_type = Task
    output_type = ProofCandidate

    def render(self, message: Message, ctx: RunContext[ProverDeps]) -> tuple[RenderedPrompt, int, int]:
        assert isinstance(message, Task)
        rendered = ctx.deps.template.render_prover(ctx.deps.values, ctx.deps.demos)
        return rendered, 0, int(message.params.get("sample", 0))


class LoTProverAgent(_FirstPassAgent):
    """MA-LoT's prover: the template's prover prompt with demonstrations; two-pass long-CoT for ``lot`` templates."""

    role = "prover"


class WholeProofAgent(_FirstPassAgent):
    """The whole-proof baseline (DeepSeek-Prover-V1.5 style): one prompt, one sample, stop at the closing fence."""

    role = "whole_proof"


class CorrectorAgent(_SamplingAgent):
    """MA-LoT's corrector: reads the latest failure (and the earlier ones of this chain) and writes a new attempt.

    The prompt holds the natural-language and Lean statements, the previous thought and proof with Lean's errors
    marked inline, every error with line, column and goal, and a short history of earlier failed attempts.
    """

    role = "corrector"
    input_type = ProofFeedback
    output_type = ProofCandidate

    def render(self, message: Message, ctx: RunContext[ProverDeps]) -> tuple[RenderedPrompt, int, int]:
        assert isinstance(message, ProofFeedback)
        deps = ctx.deps
        previous = message.candidate
        earlier = [
            m for m in ctx.history if isinstance(m, ProofFeedback) and m is not message and m.outcome == "failed"
        ]
        history = format_history(
            [
                {"summary": summarize_errors(f.messages, f.reasons), "proof": _without_header(_shown_proof(f), deps)}
                for f in earlier
            ]
        )
        feedback = {
            "previous_proof": mark_errors(_shown_proof(message), message.messages),
            "previous_thought": format_thought(previous.thought),
            "errors": format_errors(message.messages, message.reasons),
            "history": history,
        }
        rendered = deps.template.render_corrector(deps.values, feedback)
        ctx.note(corrects_round=previous.round, history=len(earlier))
        return rendered, previous.round + 1, previous.sample


def _without_header(code: str, deps: ProverDeps) -> str:
    """``code`` without the problem's header (history entries need no line numbers, so no header)."""
    header = deps.problem.header
    return code[len(header) :].lstrip("\n") if header.strip() and code.startswith(header) else code


def _shown_proof(feedback: ProofFeedback) -> str:
    """The code to show the corrector: what Lean checked (errors' lines refer to it), else the raw candidate."""
    if feedback.checked_code:
        return feedback.checked_code
    cand = feedback.candidate
    if cand.code:
        return cand.code
    raw = (cand.raw_output or "").strip()
    return raw[-2000:] if raw else "(the previous answer contained no Lean code)"


class VerifierAgent(Agent[ProofCandidate, ProofFeedback]):
    """Checks a candidate with the acceptance rule (:func:`malot.lean.verify_candidate`); no Lean call when the
    candidate has no code or the source screen rejects it. Identical candidates are checked once per problem."""

    role = "verifier"
    resource = "lean"

    async def run(self, message: ProofCandidate, ctx: RunContext[ProverDeps]) -> ProofFeedback:
        started = time.perf_counter()
        deps = ctx.deps
        if not message.code.strip():
            reason = message.extraction_error or "no Lean code block"
            ctx.note(
                lean_s=0.0,
                lean_called=False,
                verdict="failed",
                reason=reason,
                run_s=time.perf_counter() - started,
            )
            return ProofFeedback(
                outcome="failed",
                candidate=message,
                errors=[reason],
                reasons=[f"{reason}: the answer must end with the proof in a ```lean4 code block"],
            )
        gate_verdict = deps.gate(message.code) if deps.gate is not None else []
        if isinstance(gate_verdict, list):
            gate_verdict = GateVerdict(gate_verdict)
        gated = gate_verdict.reasons
        if gated:
            ctx.note(
                lean_s=0.0, lean_called=False, verdict="failed", reason=gated[0], run_s=time.perf_counter() - started
            )
            return ProofFeedback(
                outcome="failed",
                candidate=message,
                errors=["; ".join(gated)],
                reasons=gated,
                details={"status": "gated", "flags": {}, "axioms": None},
            )
        from malot.lean.acceptance import verify_candidate

        began = time.perf_counter()

        code = message.code if gate_verdict.code is None else gate_verdict.code
        target = deps.target if gate_verdict.target is None else gate_verdict.target
        header = deps.problem.header
        if header.strip() and code.startswith(header):
            code = code[len(header) :]  # the splice puts the trusted header back; a verbatim copy adds nothing

        async def check() -> Any:
            return await verify_candidate(deps.verifier, target, code, deps.rule, deps.lean_timeout)

        result, cached = await deps.cache.get_or_check(message.code, check)
        lean_s = time.perf_counter() - began  # a cached verdict may still have waited for a sibling's check
        lean_called = result.status != "screened" and not cached
        messages = messages_of(result)
        reasons = result.reasons()
        accepted = bool(result.accepted)
        ctx.note(
            lean_s=lean_s,
            lean_called=lean_called,
            cached=cached,
            verdict="verified" if accepted else "failed",
            status=result.status,
            run_s=time.perf_counter() - started,
        )
        cpu = 0.0 if cached or not lean_called else float(result.cpu_s if result.cpu_s is not None else result.time_s)
        checked = (result.code or "").rstrip()
        if checked:
            lines = checked.split("\n")
            while lines and (lines[-1].startswith("#print axioms") or not lines[-1].strip()):
                lines.pop()
            checked = "\n".join(lines)
        return ProofFeedback(
            outcome="verified" if accepted else "failed",
            candidate=message,
            errors=[] if accepted else [summarize_errors(messages, reasons)],
            details={"status": result.status, "flags": result.flags(), "axioms": result.axioms},
            lean_called=lean_called,
            messages=messages,
            reasons=reasons,
            checked_code=checked,
            time_s=float(result.time_s),
            usage=Usage(lean_cpu_seconds=cpu),
        )
