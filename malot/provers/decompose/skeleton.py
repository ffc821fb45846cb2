"""Skeletons: a proof whose steps are left as ``sorry``, the goals Lean reports at those holes, and assembly.

A *skeleton* is the problem's theorem with intermediate steps (``have h : T := sorry`` in term mode, ``have h : T
:= by sorry`` in tactic mode) left open. :func:`check_skeleton` asks the verifier whether it compiles with only
those ``sorry`` holes (the trusted header and statement are re-spliced, as for any candidate) and what each hole's
goal is: the REPL reports goals with its ``sorries``; with a backend that does not (``lean --json``), the holes are
replaced by placeholders (``_`` in term positions, ``done`` in tactic positions) and the goals are read from
Lean's "don't know how to synthesize placeholder" / "unsolved goals" errors at those positions.

:func:`lemma_from_goal` turns a goal (``x : T`` lines, then ``⊢ G``) into a standalone lemma with the local
context as binders, and the call that replaces the hole; :func:`assemble` puts proved lemmas before the theorem
and the calls into the holes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from malot.lean.lexer import code_view, tokenize
from malot.lean.splice import parse_statement

__all__ = [
    "Hole",
    "LemmaSpec",
    "SkeletonCheck",
    "assemble",
    "check_skeleton",
    "find_holes",
    "lemma_from_goal",
    "normalise_statement",
    "parse_goal",
]

_TERM_BEFORE = frozenset({":=", "(", "⟨", ",", "=>", "↦", "←", "→", "fun", "show", "from"})
_GOAL_MARK = "⊢"


@dataclass(frozen=True, slots=True)
class Hole:
    """A ``sorry`` in a skeleton: its offset, 1-based line and 0-based column, and whether it stands for a term
    (``:= sorry``) or a tactic (``by sorry``)."""

    offset: int
    line: int
    column: int
    term: bool


@dataclass(slots=True)
class SkeletonCheck:
    """What Lean said about a skeleton: ``ok`` when it compiles with only its ``sorry`` holes; the holes and the
    goal at each (same order); the spliced code; the errors (as messages) when not ok; Lean CPU seconds spent."""

    ok: bool
    code: str
    holes: list[Hole] = field(default_factory=list)
    goals: list[str] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    lean_cpu_s: float = 0.0
    lean_calls: int = 0


@dataclass(frozen=True, slots=True)
class LemmaSpec:
    """A standalone lemma made from a goal: ``statement`` (``theorem NAME binders : G :=`` or ``:= by``), the goal
    ``G``, the binders text, and ``args``: what to pass at the hole (``None`` for an instance argument)."""

    name: str
    statement: str
    goal: str
    binders: str
    args: tuple[str, ...]

    def call(self, name: str | None = None) -> str:
        """The term that replaces the hole: the lemma (or the lemma ``name`` it is cached under) applied to the
        context."""
        parts = [name or self.name, *self.args]
        return " ".join(parts) if len(parts) > 1 else parts[0]

    def negated(self, template: str, name: str) -> str:
        """The statement that the goal is false in this context (``template`` has a ``{goal}`` slot)."""
        head = f"theorem {name}{(' ' + self.binders) if self.binders else ''} : {template.format(goal=self.goal)}"
        return head + (" := by" if self.statement.rstrip().endswith("by") else " :=")


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1)
    return line, column


def find_holes(code: str, start: int = 0) -> list[Hole]:
    """The ``sorry`` tokens of ``code`` at or after offset ``start`` (comments and strings ignored)."""
    tokens = tokenize(code_view(code))
    holes: list[Hole] = []
    for i, tok in enumerate(tokens):
        if tok.start < start or tok.text != "sorry" or tok.kind != "ident":
            continue
        before = tokens[i - 1].text if i > 0 else ""
        line, column = _line_col(code, tok.start)
        holes.append(Hole(tok.start, line, column, term=before in _TERM_BEFORE))
    return holes


def _probe_code(code: str, holes: Sequence[Hole]) -> str:
    """``code`` with every hole replaced by a placeholder whose error prints the goal (same length kept short)."""
    out = code
    for hole in sorted(holes, key=lambda h: h.offset, reverse=True):
        out = out[: hole.offset] + ("_" if hole.term else "done") + out[hole.offset + len("sorry") :]
    return out


_PLACEHOLDER_GOAL = re.compile(r"(?:don't know how to synthesize placeholder[^\n]*\ncontext:\n|unsolved goals\n)")


def _goal_from_message(data: str) -> str | None:
    match = _PLACEHOLDER_GOAL.search(data)
    if match is None:
        return None
    goal = data[match.end() :].strip()
    return goal if _GOAL_MARK in goal else None


async def check_skeleton(
    verifier: Any,
    target: Any,
    candidate: str,
    *,
    timeout: float | None = None,  # noqa: ASYNC109
) -> SkeletonCheck:
    """Check that ``candidate`` (a proof of ``target`` with ``sorry`` holes) compiles with only those holes, and
    read the goal at every hole (see the module docstring)."""
    from malot.lean.acceptance import screen
    from malot.lean.base import Snippet
    from malot.provers.feedback import messages_of

    screened = screen(target, candidate)
    if not screened.code:
        return SkeletonCheck(False, "", reasons=screened.reasons or ["the skeleton could not be assembled"])
    other = [str(v) for v in screened.violations if v.rule != "sorry"]
    if other or screened.problems:
        return SkeletonCheck(False, screened.code, reasons=screened.problems + other)
    code = screened.code
    holes = find_holes(code, len(target.header))
    [result] = await verifier.check([Snippet(id="skeleton", code=code)], timeout)
    cpu = float(result.cpu_s if result.cpu_s is not None else result.time_s)
    errors = messages_of(result)
    errors = [e for e in errors if e["data"] != "the proof uses `sorry` here"]
    if result.status != "ok" or errors:
        reasons = [f"{result.status}: {result.error}"] if result.status != "ok" else []
        return SkeletonCheck(False, code, holes, errors=errors, reasons=reasons, lean_cpu_s=cpu, lean_calls=1)
    goals = _goals_from_sorries(result.sorries, holes)
    calls = 1
    if holes and goals is None:
        probe = _probe_code(code, holes)
        [probed] = await verifier.check([Snippet(id="skeleton-goals", code=probe)], timeout)
        calls += 1
        cpu += float(probed.cpu_s if probed.cpu_s is not None else probed.time_s)
        goals = _goals_from_messages(probe, probed.messages, holes)
    if goals is None or any(not g for g in goals):
        return SkeletonCheck(
            False,
            code,
            holes,
            reasons=["Lean reported no goal for some sorry of the skeleton (is each sorry a whole step?)"],
            lean_cpu_s=cpu,
            lean_calls=calls,
        )
    return SkeletonCheck(True, code, holes, goals, lean_cpu_s=cpu, lean_calls=calls)


def _goals_from_sorries(sorries: Sequence[Any], holes: Sequence[Hole]) -> list[str] | None:
    """Goals from the REPL's ``sorries`` (matched to holes by position), or ``None`` when it reported none."""
    if not sorries or not holes:
        return None
    by_pos = {(s.pos.line, s.pos.column): s.goal for s in sorries if s.pos is not None and s.goal}
    goals = [by_pos.get((h.line, h.column), "") for h in holes]
    return goals if all(goals) else None


def _goals_from_messages(code: str, messages: Sequence[Any], holes: Sequence[Hole]) -> list[str] | None:
    """Goals printed by the placeholder errors of a probe, matched to holes by position (same line, nearest
    column at or after the hole's start)."""
    found: list[str] = []
    for hole in holes:
        best: tuple[int, str] | None = None
        for m in messages:
            if m.pos is None or m.severity != "error":
                continue
            goal = _goal_from_message(m.data)
            if goal is None:
                continue
            end = m.end_pos
            inside = (m.pos.line, m.pos.column) <= (hole.line, hole.column) and (
                end is None or (hole.line, hole.column) < (end.line, end.column)
            )
            distance = 0 if inside else abs(m.pos.line - hole.line) * 1000 + abs(m.pos.column - hole.column)
            if best is None or distance < best[0]:
                best = (distance, goal)
        if best is None or best[0] >= 1000:
            return None
        found.append(best[1])
    return found


def parse_goal(goal: str) -> tuple[list[tuple[list[str], str]], str]:
    """Split a goal printed by Lean into hypotheses ``([names], type)`` and the target after ``⊢``.

    Continuation lines (indented) belong to the previous entry; ``case`` tags are dropped; a ``x : T := v``
    let-binding keeps its type only.
    """
    hyps: list[tuple[list[str], str]] = []
    target_lines: list[str] | None = None
    for raw in goal.split("\n"):
        if not raw.strip() or raw.startswith("case "):
            continue
        if raw.startswith(_GOAL_MARK):
            target_lines = [raw[len(_GOAL_MARK) :].strip()]
            continue
        if target_lines is not None:
            target_lines.append(raw.strip())
            continue
        if raw[:1].isspace() and hyps:
            names, typ = hyps[-1]
            hyps[-1] = (names, typ + " " + raw.strip())
            continue
        names_part, sep, typ = raw.partition(" : ")
        if not sep:
            continue
        hyps.append((names_part.split(), typ.strip()))
    hyps = [(names, _drop_let_value(typ)) for names, typ in hyps]
    return hyps, " ".join(target_lines or []).strip()


def _drop_let_value(typ: str) -> str:
    view = code_view(typ)
    depth = 0
    for i, c in enumerate(view):
        if c in "([{⟨":
            depth += 1
        elif c in ")]}⟩":
            depth -= 1
        elif depth == 0 and view.startswith(":=", i):
            return typ[:i].strip()
    return typ


def lemma_from_goal(goal: str, name: str, *, tactic: bool) -> LemmaSpec:
    """A standalone lemma for ``goal``: each hypothesis a binder, the target its type; inaccessible names
    (``x✝``) get fresh names in the lemma and ``_`` at the call (instances: ``[T]`` and nothing at the call)."""
    hyps, target = parse_goal(goal)
    renames: dict[str, str] = {}
    binders: list[str] = []
    args: list[str] = []
    fresh = 0
    for names, typ in hyps:
        typ = _rename(typ, renames)
        plain: list[str] = []
        for n in names:
            if "✝" in n:
                fresh += 1
                new = f"{n.replace('✝', '')}_anon{fresh}"
                renames[n] = new
                if n.startswith("inst"):
                    binders.append(f"[{typ}]")
                    continue
                plain.append(new)
                args.append("_")
            else:
                plain.append(n)
                args.append(n)
        if plain:
            binders.append(f"({' '.join(plain)} : {typ})")
    target = _rename(target, renames)
    binder_text = " ".join(binders)
    head = f"theorem {name}{(' ' + binder_text) if binder_text else ''} : {target}"
    statement = head + (" := by" if tactic else " :=")
    return LemmaSpec(name, statement, target, binder_text, tuple(args))


def _rename(text: str, renames: dict[str, str]) -> str:
    for old, new in renames.items():
        text = text.replace(old, new)
    return text


def normalise_statement(statement: str) -> str:
    """The cache key of a lemma: its statement with the declared name replaced and whitespace collapsed."""
    text = re.sub(r"^\s*(theorem|lemma)\s+\S+", "theorem _", statement.strip())
    return " ".join(text.split())


def assemble(
    code: str,
    holes: Sequence[Hole],
    calls: Sequence[str],
    declarations: Sequence[str],
    *,
    statement_start: int,
) -> str:
    """The skeleton ``code`` with each hole replaced by its call (``exact CALL`` in tactic positions) and the
    lemma ``declarations`` placed right before the theorem (at ``statement_start``)."""
    out = code
    for hole, call in sorted(zip(holes, calls, strict=True), key=lambda hc: hc[0].offset, reverse=True):
        text = f"({call})" if hole.term else f"exact {call}"
        out = out[: hole.offset] + text + out[hole.offset + len("sorry") :]
    block = "".join(d.rstrip() + "\n\n" for d in declarations)
    return out[:statement_start] + block + out[statement_start:]


def statement_mode(statement: str) -> bool:
    """True when ``statement`` is proved in tactic mode (ends in ``:= by``)."""
    return parse_statement(statement)[1] == "tactic"
