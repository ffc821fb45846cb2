"""What a prover is asked to prove: a :class:`Problem` (name, Lean header, statement, informal text, split).

Problems come from three places: a MiniF2F row (``minif2f:NAME``), a statement string (with or without a header
before it), or a theorem inside a ``.lean`` file. Every statement is normalised to end in ``:= by`` (the MiniF2F
form) or ``:=`` (a term-mode proof follows); a trailing ``sorry`` or existing proof is cut off.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from malot.errors import DatasetError
from malot.lean.lexer import code_view

__all__ = ["DEFAULT_HEADER", "Problem", "load_problem", "problem_from_benchmark", "split_statement"]

#: The header MiniF2F problems use; the default for a bare statement that brings none.
DEFAULT_HEADER = (
    "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 400000\n\nopen BigOperators Real Nat Topology Rat\n\n"
)

_DECL = re.compile(r"(?m)^[ \t]*(?:@\[[^\]]*\][ \t]*)?(?:private[ \t]+|protected[ \t]+)?(theorem|lemma|example)\b")
_NAME = re.compile(r"(?:theorem|lemma)\s+([^\s({\[:]+)")


class Problem(BaseModel):
    """One theorem to prove.

    ``header`` is the Lean text before the theorem (imports, options, opens, or a ``prelude`` with definitions); it
    ends with a newline when non-empty. ``statement`` is the declaration up to and including ``:= by`` or ``:=``.
    ``informal`` is the natural-language problem, if known; ``split`` the dataset split it belongs to.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    header: str = ""
    statement: str
    informal: str | None = None
    split: str | None = None

    @property
    def term_mode(self) -> bool:
        """True when the statement ends in ``:=`` (a term proof follows) rather than ``:= by``."""
        return not self.statement.rstrip().endswith("by")

    @property
    def code(self) -> str:
        """Header and statement, the text a model continues with the proof."""
        return self.header + self.statement

    def target(self) -> Any:
        """The Lean layer's :class:`~malot.lean.acceptance.TargetTheorem` for this problem."""
        from malot.lean.acceptance import TargetTheorem

        return TargetTheorem(header=self.header, statement=self.statement, name=self.name)

    def doc_comment(self) -> str:
        """The informal statement as a Lean doc comment (empty when there is none)."""
        if not self.informal:
            return ""
        text = self.informal.strip()
        if text.startswith("/--"):
            return text + "\n"
        return f"/-- {text} -/\n"

    @classmethod
    def from_minif2f(cls, name: str) -> Problem:
        """The MiniF2F problem ``name`` from the copy shipped in :mod:`malot.data`."""
        rows = _minif2f_rows()
        row = rows.get(name)
        if row is None:
            import difflib

            close = difflib.get_close_matches(name, list(rows), n=3)
            hint = f"did you mean {', '.join(close)}?" if close else "names look like mathd_algebra_182"
            raise DatasetError(f"no MiniF2F problem named {name!r}", hint=hint)
        informal = row.get("informal_statement") or None
        return cls(
            name=name,
            header=_ensure_newline(row.get("header", "")),
            statement=normalize_statement(row["formal_statement"]),
            informal=informal,
            split=row.get("split"),
        )

    @classmethod
    def from_statement(
        cls,
        text: str,
        *,
        name: str | None = None,
        header: str | None = None,
        informal: str | None = None,
    ) -> Problem:
        """A problem from a statement string.

        Text before the first ``theorem``/``lemma`` is taken as the header (unless ``header`` is given); a bare
        statement with no header gets :data:`DEFAULT_HEADER` (Mathlib). The name comes from the declaration; an
        ``example`` becomes ``theorem NAME`` (``name``, default ``goal``) so the acceptance rule can check it.
        """
        found_header, statement = split_statement(text)
        if header is None:
            header = found_header if found_header.strip() else DEFAULT_HEADER
        decl_name = _declared_name(statement)
        if decl_name is None:  # an ``example``: give it a name, the acceptance rule checks a named theorem
            decl_name = name or "goal"
            statement = re.sub(r"^\s*example\b", f"theorem {decl_name}", statement, count=1)
        return cls(
            name=name or decl_name,
            header=_ensure_newline(header),
            statement=normalize_statement(statement),
            informal=informal,
        )

    @classmethod
    def from_lean_file(cls, path: str | Path, theorem: str, *, informal: str | None = None) -> Problem:
        """The theorem ``theorem`` of a ``.lean`` file: everything before it is the header, its proof is dropped."""
        p = Path(path)
        if not p.is_file():
            raise DatasetError(f"Lean file {p} does not exist", hint="pass an existing .lean file to --file")
        try:
            source = p.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise DatasetError(
                f"Lean file {p} is not UTF-8 text (byte at offset {exc.start})", hint="save it as UTF-8"
            ) from None
        view = code_view(source)
        pattern = re.compile(
            r"(?m)^[ \t]*(?:@\[[^\]]*\][ \t]*)?(?:private[ \t]+|protected[ \t]+)?(?:theorem|lemma)\s+"
            + re.escape(theorem)
            + r"(?=[\s({\[:])"
        )
        match = pattern.search(view)
        if match is None:
            names = _NAME.findall(view)
            hint = f"theorems in the file: {', '.join(names[:10])}" if names else "the file declares no theorem"
            raise DatasetError(f"no theorem named {theorem!r} in {p}", hint=hint)
        start = match.start()
        end = _statement_end(view, match.end())
        if end is None:
            raise DatasetError(
                f"theorem {theorem!r} in {p} has no ':=' ending its statement",
                hint="write the statement as 'theorem NAME ... := by' or '... :='",
            )
        statement = source[start:end]
        rest = source[end:]
        if rest.lstrip().startswith("by") and not statement.rstrip().endswith("by"):
            statement = statement.rstrip() + " by"
        return cls(
            name=theorem,
            header=_ensure_newline(source[:start]),
            statement=normalize_statement(statement),
            informal=informal,
        )


def load_problem(spec: str) -> Problem:
    """A problem from a spec: ``minif2f:NAME``, ``putnambench:NAME`` (the published answer given),
    ``putnambench-produced:NAME`` (the prover defines the answer), or a statement string."""
    if spec.startswith("minif2f:"):
        return Problem.from_minif2f(spec.split(":", 1)[1])
    if spec.startswith(("putnambench:", "putnambench-produced:")):
        from malot.eval.putnam import load_putnambench

        mode = "produced" if spec.startswith("putnambench-produced:") else "given"
        row = load_putnambench(mode).get(spec.split(":", 1)[1])
        return problem_from_benchmark(row)
    return Problem.from_statement(spec)


def problem_from_benchmark(row: Any) -> Problem:
    """A :class:`Problem` from a dataset's :class:`~malot.eval.problems.BenchmarkProblem`."""
    return Problem(name=row.name, header=row.header, statement=row.statement, informal=row.informal, split=row.split)


def split_statement(text: str) -> tuple[str, str]:
    """Split ``text`` into (header, statement) at its first ``theorem``/``lemma``/``example`` declaration."""
    view = code_view(text)
    match = _DECL.search(view)
    if match is None:
        raise DatasetError(
            "the statement has no 'theorem', 'lemma' or 'example' declaration",
            hint="write it as 'theorem NAME (x : T) : P := by'",
        )
    start = match.start()
    return text[:start], text[start:].strip()


def normalize_statement(statement: str) -> str:
    """End the statement in ``:= by`` or ``:=``: cut a trailing ``sorry`` or proof, add ``:= by`` if missing."""
    text = statement.rstrip()
    view = code_view(text)
    decl = _DECL.search(view)
    begin = decl.end() if decl else 0
    end = _statement_end(view, begin)
    if end is None:
        return text + " := by"
    rest = text[end:].strip()
    head = text[:end].rstrip()
    if rest.startswith("by") and (len(rest) == 2 or not rest[2].isalnum()):
        return head + " by"
    return head


def _statement_end(view: str, begin: int) -> int | None:
    """Index just after the ``:=`` that ends the signature starting at ``begin`` (brackets are skipped)."""
    depth = 0
    i = begin
    n = len(view)
    while i < n:
        c = view[i]
        if c in "([{⦃⟨":
            depth += 1
        elif c in ")]}⦄⟩":
            depth = max(0, depth - 1)
        elif c == ":" and i + 1 < n and view[i + 1] == "=" and depth == 0:
            return i + 2
        i += 1
    return None


def _declared_name(statement: str) -> str | None:
    match = _NAME.search(code_view(statement))
    return match.group(1) if match else None


def _ensure_newline(text: str) -> str:
    return text if not text or text.endswith("\n") else text + "\n"


@lru_cache(maxsize=1)
def _minif2f_rows() -> dict[str, dict[str, Any]]:
    from malot.data import MINIF2F_JSONL

    rows: dict[str, dict[str, Any]] = {}
    with MINIF2F_JSONL.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                rows[row["name"]] = row
    return rows
