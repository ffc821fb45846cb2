"""APOLLO-style repair: cut a failed proof at its failing steps, prove those steps as lemmas, keep the rest.

:func:`cut_failing_steps` replaces the proof of every ``have`` step that contains a Lean error by ``sorry`` (and,
in tactic proofs, a failing tactic line outside any step by ``sorry``); the result is checked as a skeleton, its
holes are proved as lemmas by the :class:`~malot.provers.decompose.engine.Decomposer` (automation, sub-strategy,
recursion, the shared cache) and the assembled proof goes back to the verifier. :class:`RepairAgent` is the
workflow node that whole-proof and MA-LoT add with ``--repair`` (``decompose.repair``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from malot.agents import Agent, RunContext
from malot.provers.agents import ProofCandidate, ProofFeedback, ProverDeps
from malot.provers.decompose.engine import Decomposer, Sketch, StepSpend

__all__ = ["RepairAgent", "RepairedCandidate", "cut_failing_steps"]

_HAVE = re.compile(r"^([ \t]*)(?:have|obtain)\b[^\n]*?:=")


class RepairedCandidate(ProofCandidate):
    """A candidate assembled by repair (repair is tried once per failed proof, never on its own output)."""

    repaired_steps: int = 0


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def cut_failing_steps(code: str, errors: Sequence[Mapping[str, Any]], *, start_line: int = 1) -> tuple[str, int]:
    """``code`` with the proof of each failing step replaced by ``sorry``; (new code, steps cut).

    ``errors`` are Lean's error messages (1-based ``line``); only lines from ``start_line`` on (the proof, not the
    header) are touched. A ``have ... :=`` line whose proof (the line's rest and the lines indented below it)
    holds an error gets ``:= sorry`` (``:= by sorry`` when its proof started with ``by``); an error line outside
    any step that looks like one tactic is replaced by ``sorry`` at its indentation.
    """
    lines = code.split("\n")
    bad = sorted({int(e["line"]) for e in errors if e.get("line") is not None and int(e["line"]) >= start_line})
    cut: list[tuple[int, int, str]] = []  # (first line index, last line index, replacement)
    for line_no in bad:
        index = line_no - 1
        if index >= len(lines) or any(a <= index <= b for a, b, _ in cut):
            continue
        step = _enclosing_step(lines, index, start_line - 1)
        if step is not None:
            first, last = step
            head = lines[first]
            assign = head.index(":=", _HAVE.match(head).end() - 2)  # type: ignore[union-attr]
            after = head[assign + 2 :].strip()
            tail = " by sorry" if after.startswith("by") else " sorry"
            cut.append((first, last, head[: assign + 2] + tail))
        elif lines[index].strip() and not lines[index].lstrip().startswith(("theorem", "lemma", "--")):
            cut.append((index, index, " " * _indent(lines[index]) + "sorry"))
    for first, last, text in sorted(cut, reverse=True):
        lines[first : last + 1] = [text]
    return "\n".join(lines), len(cut)


def _enclosing_step(lines: list[str], index: int, floor: int) -> tuple[int, int] | None:
    """The (first, last) line indexes of the innermost ``have`` step whose proof contains line ``index``."""
    for first in range(index, floor - 1, -1):
        match = _HAVE.match(lines[first])
        if match is None:
            continue
        base = _indent(lines[first])
        last = first
        while last + 1 < len(lines) and (not lines[last + 1].strip() or _indent(lines[last + 1]) > base):
            last += 1
        while last > first and not lines[last].strip():
            last -= 1
        if first <= index <= last:
            return first, last
    return None


class RepairAgent(Agent[ProofFeedback, ProofCandidate]):
    """Repairs a failed proof: cut at the failing steps, prove the cut steps as lemmas, reassemble."""

    role = "repair"
    resource = None

    def __init__(self, decomposer: Decomposer) -> None:
        self.decomposer = decomposer

    async def run(self, message: ProofFeedback, ctx: RunContext[ProverDeps]) -> ProofCandidate:
        started = time.perf_counter()
        spend = StepSpend(ctx.meter)
        problem = ctx.deps.problem
        previous = message.candidate
        assert isinstance(previous, ProofCandidate)
        code = message.checked_code
        start_line = problem.header.count("\n") + 1
        cut, steps = cut_failing_steps(code, message.messages, start_line=start_line) if code else ("", 0)
        reason = ""
        assembled = ""
        if not steps:
            reason = "repair: no failing step to cut"
        else:
            body = cut[len(problem.header) :] if problem.header and cut.startswith(problem.header) else cut
            check = await self.decomposer.check(ctx, Sketch(problem, body), spend)
            if not check.ok:
                reason = "repair: the proof still fails with its failing steps cut"
            else:
                holes = await self.decomposer.prove_holes(ctx, problem, check, spend, 0)
                if holes.status == "proved":
                    assembled = holes.code
                else:
                    reason = f"repair: {holes.reason}"
        ctx.note(run_s=time.perf_counter() - started, repaired_steps=steps, repair=reason or "assembled")
        header = problem.header
        body = assembled[len(header) :] if header and assembled.startswith(header) else assembled
        return RepairedCandidate(
            outcome="candidate" if body else "no_code",
            code=body,
            thought=previous.thought,
            round=previous.round,
            sample=previous.sample,
            raw_output=previous.raw_output,
            extraction_error=reason or None,
            repaired_steps=steps,
            usage=spend.usage,
        )


def repairable(message: Any, view: Any) -> bool:
    """Edge condition: a failed verdict on a candidate that was not itself produced by repair, with code."""
    return (
        isinstance(message, ProofFeedback)
        and message.outcome == "failed"
        and not isinstance(message.candidate, RepairedCandidate)
        and bool(message.checked_code)
        and bool(message.messages)
    )
