"""The demonstration corpus: one typed record per solved problem, and loaders for the JSONL shapes malot meets.

A demonstration is a problem (optional informal text, the Lean 4 statement) together with a verified proof. The
loaders accept the shipped solved-demonstrations file (``malot.data.DEMOS_JSONL``), MiniF2F-style rows (only the rows
that carry a proof are kept), and any JSONL whose rows hold a statement, a proof and optionally informal text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from malot.errors import RetrievalError

__all__ = [
    "Corpus",
    "Demonstration",
    "Query",
    "as_query",
    "demonstration_from_row",
    "load_corpus",
    "normalize_statement",
]

_NAME_KEYS = ("name", "problem_name", "id", "theorem_name")
_INFORMAL_KEYS = ("informal", "informal_statement", "informal_prefix", "nl_statement", "natural_language")
_STATEMENT_KEYS = ("statement", "formal_statement")
_PROOF_KEYS = ("proof", "formal_proof")
_DOC_COMMENT = re.compile(r"^\s*/--?(.*?)-/\s*$", re.DOTALL)
_THEOREM_NAME = re.compile(r"^\s*(?:theorem|lemma)\s+(\S+)")


class Demonstration(BaseModel):
    """One solved problem usable as a few-shot demonstration (or, without a proof, as a query).

    ``statement`` is the Lean 4 theorem ending in ``:= by`` (or ``:=``), ``proof`` the proof body that follows it,
    ``informal`` the natural-language problem as plain text and ``header`` the imports/opens it needs.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = ""
    split: str = "unknown"
    informal: str = ""
    statement: str
    proof: str = ""
    header: str = ""

    @property
    def input_text(self) -> str:
        """The problem as a prompt shows it: informal text (as a Lean doc comment) then the statement."""
        statement = self.statement.rstrip()
        if not self.informal:
            return statement
        return f"/-- {self.informal} -/\n{statement}"

    @property
    def code(self) -> str:
        """The statement followed by its proof: the Lean text a prompt uses as the worked example."""
        statement = self.statement.rstrip("\n")
        proof = self.proof.strip("\n")
        return f"{statement}\n{proof}" if proof else statement


#: What ``Retriever.retrieve`` accepts: a demonstration-like problem or the bare statement text.
Query = Demonstration | str


def as_query(query: Query) -> Demonstration:
    """Turn a bare statement string into a :class:`Demonstration` so retrievers deal with one type."""
    if isinstance(query, Demonstration):
        return query
    if not isinstance(query, str) or not query.strip():
        raise RetrievalError("a retrieval query must be a Demonstration or a non-empty statement string")
    match = _THEOREM_NAME.match(query)
    return Demonstration(name=match.group(1) if match else "", split="query", statement=query)


def normalize_statement(statement: str) -> str:
    """The statement with whitespace collapsed and the trailing ``:= by`` removed, for duplicate detection."""
    text = " ".join(statement.split())
    for suffix in (":= by", ":="):
        if text.endswith(suffix):
            text = text[: -len(suffix)].rstrip()
            break
    return text


def _first(row: Mapping[str, Any], keys: Sequence[str]) -> str:
    for key in keys:
        value = row.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return ""


def _plain_informal(text: str) -> str:
    match = _DOC_COMMENT.match(text)
    return " ".join((match.group(1) if match else text).split())


def demonstration_from_row(row: Mapping[str, Any], *, default_split: str = "unknown", where: str = "") -> Demonstration:
    """Build a demonstration from one JSON row, accepting the key spellings of the known datasets.

    Names: ``name``/``problem_name``/``id``; statement: ``statement``/``formal_statement``; proof:
    ``proof``/``formal_proof``; informal: ``informal``/``informal_statement``/``informal_prefix`` (a doc comment is
    unwrapped). A missing name is taken from the ``theorem NAME`` of the statement.
    """
    statement = _first(row, _STATEMENT_KEYS)
    if not statement:
        raise RetrievalError(
            f"{where or 'row'} has no statement",
            hint="each row needs a 'statement' or 'formal_statement' string",
        )
    name = _first(row, _NAME_KEYS)
    if not name:
        match = _THEOREM_NAME.match(statement)
        name = match.group(1) if match else ""
    split = row.get("split")
    return Demonstration(
        name=name,
        split=split if isinstance(split, str) and split else default_split,
        informal=_plain_informal(_first(row, _INFORMAL_KEYS)),
        statement=statement,
        proof=_first(row, _PROOF_KEYS),
        header=row.get("header") if isinstance(row.get("header"), str) else "",
    )


class Corpus(Sequence[Demonstration]):
    """An ordered, immutable list of demonstrations with name and statement look-ups."""

    def __init__(self, demos: Iterable[Demonstration], *, source: str = "") -> None:
        self._demos: tuple[Demonstration, ...] = tuple(demos)
        self.source = source
        self._by_name: dict[str, list[int]] = {}
        self._by_statement: dict[str, list[int]] = {}
        for i, demo in enumerate(self._demos):
            if demo.name:
                self._by_name.setdefault(demo.name, []).append(i)
            self._by_statement.setdefault(normalize_statement(demo.statement), []).append(i)

    def __len__(self) -> int:
        return len(self._demos)

    def __getitem__(self, index: int) -> Demonstration:  # type: ignore[override]
        return self._demos[index]

    def __iter__(self) -> Iterator[Demonstration]:
        return iter(self._demos)

    @property
    def demos(self) -> tuple[Demonstration, ...]:
        """The demonstrations, in corpus order (indexes refer to this order)."""
        return self._demos

    @property
    def splits(self) -> set[str]:
        """The dataset splits the corpus draws from."""
        return {d.split for d in self._demos}

    def find(self, name: str) -> Demonstration | None:
        """The first demonstration called ``name``, or ``None``."""
        ids = self._by_name.get(name)
        return self._demos[ids[0]] if ids else None

    def same_problem_ids(self, query: Demonstration) -> set[int]:
        """Indexes of corpus entries that are the query's own problem (same name or same statement)."""
        out: set[int] = set()
        if query.name:
            out.update(self._by_name.get(query.name, ()))
        out.update(self._by_statement.get(normalize_statement(query.statement), ()))
        return out

    def subset(self, indexes: Iterable[int]) -> Corpus:
        """A new corpus of the given entries, in the given order."""
        return Corpus((self._demos[i] for i in indexes), source=self.source)

    def to_jsonl(self, path: Path) -> None:
        """Write the corpus as JSONL (one demonstration per line, the field names of :class:`Demonstration`)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as fh:
            for demo in self._demos:
                fh.write(json.dumps(demo.model_dump(), ensure_ascii=False) + "\n")


def load_corpus(
    path: str | Path | None = None, *, require_proofs: bool = True, splits: Iterable[str] | None = None
) -> Corpus:
    """Load demonstrations from a JSONL file (default: the shipped solved MiniF2F-valid demonstrations).

    Rows without a proof are dropped when ``require_proofs`` (MiniF2F rows only count once solved); ``splits``
    keeps only those dataset splits. Raises :class:`RetrievalError` if the file is missing, malformed or yields
    nothing.
    """
    if path is None:
        from malot.data import DEMOS_JSONL

        path = DEMOS_JSONL
    file = Path(path)
    if not file.is_file():
        raise RetrievalError(f"demonstration corpus {file} does not exist", hint="pass a JSONL file of solved problems")
    keep = set(splits) if splits is not None else None
    demos: list[Demonstration] = []
    with file.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise RetrievalError(f"{file}:{lineno} is not valid JSON: {exc.msg}", hint="fix that line") from None
            if not isinstance(row, dict):
                raise RetrievalError(f"{file}:{lineno} is not a JSON object", hint="one object per line")
            demo = demonstration_from_row(row, where=f"{file}:{lineno}")
            if require_proofs and not demo.proof.strip():
                continue
            if keep is not None and demo.split not in keep:
                continue
            demos.append(demo)
    if not demos:
        raise RetrievalError(
            f"{file} holds no usable demonstrations" + (" (no row has a proof)" if require_proofs else ""),
            hint="demonstrations need 'statement'/'formal_statement' and 'proof'/'formal_proof'",
        )
    return Corpus(demos, source=str(file))
