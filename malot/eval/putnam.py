"""PutnamBench: loading the shipped copy in both answer modes, and the check a produced solution must pass.

346 of the 672 problems contain ``abbrev <name>_solution : T := sorry`` with the published answer in a comment
on the next line. In ``given`` mode that answer is substituted into the trusted header. In ``produced`` mode the
header keeps only a comment naming the solution and its type, and the prover must define the solution itself;
:func:`check_solution` then decides whether the candidate may count: it defines ``<name>_solution`` exactly once,
with the original type, with no ``sorry``/``admit``/``sorryAx`` in its value, declares nothing else but theorems
(no axioms, no other definitions or instances), and restates the theorem unchanged (if it restates it at all).
:func:`produced_target` turns a passing candidate into the target whose trusted header holds that solution, so the
ordinary acceptance rule (statement re-spliced, ``#print axioms``) decides the rest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from malot.errors import DatasetError
from malot.lean.lexer import code_view, tokenize

__all__ = [
    "ANSWER_MODES",
    "PutnamEntry",
    "SolutionCheck",
    "check_solution",
    "load_putnambench",
    "parse_entry",
    "produced_gate",
    "produced_target",
    "putnam_entries",
]

AnswerMode = Literal["given", "produced"]
ANSWER_MODES: tuple[str, ...] = ("given", "produced")

_DECL_WORDS = frozenset(
    {"theorem", "lemma", "def", "abbrev", "axiom", "opaque", "instance", "structure", "inductive", "class", "example"}
)
_CHEATS = frozenset({"sorry", "admit", "sorryAx"})


@dataclass(frozen=True, slots=True)
class PutnamEntry:
    """One PutnamBench file taken apart: the header before the problem (imports, opens, definitions), the solution
    (name, type, published answer) when the file has one to fill, the informal statement and the theorem."""

    name: str
    header: str
    statement: str
    informal: str | None
    solution_name: str | None = None
    solution_type: str | None = None
    solution_answer: str | None = None
    solution_keyword: str = "abbrev"

    def header_for(self, mode: AnswerMode) -> str:
        """The trusted header in answer mode ``mode``."""
        if self.solution_name is None:
            return self.header
        if mode == "given":
            decl = f"{self.solution_keyword} {self.solution_name} : {self.solution_type} := {self.solution_answer}\n"
        else:
            decl = (
                f"-- Answer to produce: define `{self.solution_keyword} {self.solution_name} : "
                f"{self.solution_type} := ...` before the theorem.\n"
            )
        return self.header + decl + "\n"


_SOLUTION = re.compile(
    r"(?m)^((?:noncomputable\s+)?)abbrev\s+(\S+_solution)\s*:\s*(.*?)\s*:=\s*sorry[ \t]*\n((?:--[^\n]*\n?)+)", re.S
)
_THEOREM = re.compile(r"(?m)^theorem\s+([^\s:({\[]+)")
_DOC = re.compile(r"/--(.*?)-/\s*$", re.S)


def parse_entry(name: str, source: str) -> PutnamEntry:
    """Take one PutnamBench file apart (see :class:`PutnamEntry`); a file of another shape is a DatasetError."""
    view = code_view(source)
    theorem = next((m for m in _THEOREM.finditer(view) if m.group(1) == name), None)
    if theorem is None:
        raise DatasetError(f"PutnamBench {name}: no 'theorem {name}' in its file")
    before = source[: theorem.start()]
    doc = _DOC.search(before)
    informal = doc.group(1).strip() if doc else None
    if doc:
        before = before[: doc.start()]
    rest = source[theorem.start() :]
    end = _statement_end(code_view(rest))
    if end is None:
        raise DatasetError(f"PutnamBench {name}: the theorem has no ':=' ending its statement")
    statement = rest[:end].rstrip()
    statement += " by"  # like MiniF2F: the proof is a tactic block (a term proof may still follow ``by exact``)
    sol = _SOLUTION.search(before)
    if sol is None:
        return PutnamEntry(name, before.rstrip() + "\n\n", statement, informal)
    answer = " ".join(line[2:].strip() for line in sol.group(4).strip().split("\n"))
    header = before[: sol.start()] + before[sol.end() :]
    return PutnamEntry(
        name,
        header.rstrip() + "\n\n",
        statement,
        informal,
        solution_name=sol.group(2),
        solution_type=" ".join(sol.group(3).split()),
        solution_answer=answer,
        solution_keyword=sol.group(1) + "abbrev",
    )


def _statement_end(view: str) -> int | None:
    """Offset just after the top-level ``:=`` that ends the theorem's signature."""
    depth = 0
    for i, c in enumerate(view):
        if c in "([{⦃⟨":
            depth += 1
        elif c in ")]}⦄⟩":
            depth = max(0, depth - 1)
        elif c == ":" and view.startswith(":=", i) and depth == 0:
            return i + 2
    return None


@lru_cache(maxsize=1)
def putnam_entries() -> tuple[PutnamEntry, ...]:
    """Every shipped PutnamBench problem, parsed (in file order)."""
    from malot.data import PUTNAMBENCH_JSONL

    entries = []
    for lineno, line in enumerate(PUTNAMBENCH_JSONL.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        entry = parse_entry(row["name"], row["source"])
        if bool(row.get("has_solution_to_fill")) != (entry.solution_name is not None):
            raise DatasetError(f"{PUTNAMBENCH_JSONL}:{lineno}: the solution to fill of {row['name']} was not found")
        entries.append(entry)
    return tuple(entries)


def load_putnambench(answer_mode: str = "given") -> Any:
    """The shipped PutnamBench as a :class:`~malot.eval.datasets.Dataset` in answer mode ``given`` or
    ``produced`` (split ``test``; the dataset declares its Lean toolchain, v4.27.0)."""
    from malot.eval.datasets import Dataset
    from malot.eval.problems import BenchmarkProblem

    if answer_mode not in ANSWER_MODES:
        raise DatasetError(f"unknown PutnamBench answer mode {answer_mode!r}", hint="use given or produced")
    mode: AnswerMode = "given" if answer_mode == "given" else "produced"
    from malot.data import PUTNAMBENCH_JSONL

    problems = [
        BenchmarkProblem(
            name=e.name,
            split="test",
            header=e.header_for(mode),
            statement=e.statement,
            informal=e.informal,
            source=f"putnambench.jsonl:{i + 1}",
        )
        for i, e in enumerate(putnam_entries())
    ]
    from malot.lean.projects import PINNED_PROJECTS

    toolchain = PINNED_PROJECTS["putnambench"].toolchain
    return Dataset(f"putnambench-{mode}", problems, str(PUTNAMBENCH_JSONL), toolchain=toolchain)


@dataclass(slots=True)
class SolutionCheck:
    """The verdict of :func:`check_solution`: ``ok``, the reasons when not, and the solution's declaration."""

    ok: bool
    reasons: list[str] = field(default_factory=list)
    declaration: str = ""
    #: where the solution's declaration lies in the candidate (start, end offsets); (0, 0) when not found
    span: tuple[int, int] = (0, 0)

    def rest(self, candidate: str) -> str:
        """The candidate without the solution's declaration (what is left to check as the proof)."""
        start, end = self.span
        return candidate[:start] + candidate[end:] if end > start else candidate


_PREFIX = re.compile(r"@\[[^\]]*\]|\b(?:noncomputable|private|protected|unsafe|partial)\b")


def _declarations(code: str) -> list[tuple[str, str, int, int]]:
    """Top-level declarations of ``code``: (keyword, name, start offset, end offset). A declaration starts at the
    beginning of its line, after attributes (``@[simp]``) and modifiers (``noncomputable``, ``private`` ...)."""
    view = code_view(code)
    tokens = tokenize(view)
    starts: list[tuple[str, str, int]] = []
    for k, tok in enumerate(tokens):
        if tok.kind != "ident" or tok.text not in _DECL_WORDS:
            continue
        line_start = view.rfind("\n", 0, tok.start) + 1
        if _PREFIX.sub("", view[line_start : tok.start]).strip():
            continue
        name = tokens[k + 1].text if k + 1 < len(tokens) else ""
        starts.append((tok.text, name, line_start))
    out = []
    for i, (kw, name, start) in enumerate(starts):
        end = starts[i + 1][2] if i + 1 < len(starts) else len(code)
        out.append((kw, name, start, end))
    return out


def _norm(text: str) -> str:
    return " ".join(code_view(text).split())


def check_solution(
    candidate: str,
    *,
    solution_name: str,
    solution_type: str,
    theorem_name: str,
    statement: str,
    allowed: Sequence[str] = ("theorem", "lemma"),
) -> SolutionCheck:
    """Decide whether a produced-mode candidate may count (see the module docstring); pure text, no Lean.

    ``statement`` is the original theorem statement (``theorem NAME ... :=``); ``allowed`` are the declaration
    kinds the candidate may add besides the solution (helper theorems, checked by the acceptance rule as part of
    the proof).
    """
    reasons: list[str] = []
    decls = _declarations(candidate)
    solutions = [d for d in decls if d[1] == solution_name]
    declaration = ""
    span = (0, 0)
    if len(solutions) != 1:
        reasons.append(f"the candidate must define {solution_name} exactly once (found {len(solutions)})")
    else:
        kw, _, start, end = solutions[0]
        declaration = candidate[start:end].rstrip()
        span = (start, start + len(declaration))
        if kw not in ("abbrev", "def"):
            reasons.append(f"{solution_name} must be an abbrev or def, not {kw}")
        view = code_view(declaration)
        assign = _statement_end(view)
        if assign is None:
            reasons.append(f"{solution_name} has no ':=' value")
        else:
            signature = view[: assign - 2]
            head = signature.split(solution_name, 1)[1] if solution_name in signature else signature
            if _norm(head.lstrip().removeprefix(":")) != _norm(solution_type):
                reasons.append(f"{solution_name} must keep its type {solution_type}")
            value_tokens = {t.text for t in tokenize(view[assign:])}
            if value_tokens & _CHEATS:
                reasons.append(f"{solution_name} is defined with {', '.join(sorted(value_tokens & _CHEATS))}")
        if view.lstrip().startswith("@[") or "implemented_by" in view or "extern" in view:
            reasons.append(f"{solution_name} carries attributes; plain definitions only")
    for kw, name, _, _ in decls:
        if name == solution_name:
            continue
        if kw == "axiom" or kw == "opaque":
            reasons.append(f"the candidate declares {kw} {name}")
        elif kw not in allowed:
            reasons.append(f"the candidate declares {kw} {name}; only the solution may be defined")
        elif name == theorem_name and "theorem" in kw:
            _, _, start, end = next(d for d in decls if d[1] == theorem_name)
            view = code_view(candidate[start:end])
            cut = _statement_end(view)
            original = code_view(statement)
            original_cut = _statement_end(original)
            if cut is None or _norm(view[:cut]) != _norm(original[: original_cut or len(original)]):
                reasons.append(f"the statement of {theorem_name} was changed")
    return SolutionCheck(not reasons, reasons, declaration, span)


_PRODUCED_MARK = re.compile(
    r"^-- Answer to produce: define `((?:noncomputable )?abbrev) (\S+) : (.*?) := \.\.\.` before the theorem\.$", re.M
)


def produced_gate(header: str, statement: str, theorem_name: str) -> Callable[[str], Any] | None:
    """For a ``produced``-mode problem (its header names the solution to define): a function from a candidate's
    code to a :class:`~malot.provers.agents.GateVerdict`; ``None`` for any other problem. The provers run it before
    Lean (``ProverDeps.gate``). A candidate that fails :func:`check_solution` is rejected with its reasons; one that
    passes is checked by Lean against :func:`produced_target` (the solution moved into the statement's context) with
    the rest of the candidate as the proof, so the final check elaborates the original statement over the produced
    solution and counts the solution's axioms (a ``sorry`` hidden from the text check still shows as ``sorryAx``)."""
    match = _PRODUCED_MARK.search(header)
    if match is None:
        return None
    solution_name, solution_type = match.group(2), match.group(3)

    def gate(candidate: str) -> Any:
        from malot.provers.agents import GateVerdict

        check = check_solution(
            candidate,
            solution_name=solution_name,
            solution_type=solution_type,
            theorem_name=theorem_name,
            statement=statement,
        )
        if not check.ok:
            return GateVerdict(check.reasons)
        return GateVerdict([], produced_target(header, statement, theorem_name, check), check.rest(candidate))

    return gate


def produced_target(header: str, statement: str, theorem_name: str, check: SolutionCheck) -> Any:
    """The target to verify a passing produced-mode candidate against: the header followed by the checked solution
    declaration, and the original statement (a failed check is an error). The header is marked untrusted (it holds
    the prover's text), so the final check applies its raw-text guards to it as in whole-file mode."""
    from malot.lean.acceptance import TargetTheorem

    if not check.ok:
        raise DatasetError("the produced solution did not pass check_solution: " + "; ".join(check.reasons))
    return TargetTheorem(
        header=header + check.declaration + "\n\n", statement=statement, name=theorem_name, trusted_header=False
    )
