"""Benchmark datasets: MiniF2F JSONL, a Lean project's ``sorry`` theorems, and the LeanDojo benchmark layout.

:func:`load_dataset` turns a dataset spec (``minif2f``, a ``.jsonl`` file, a LeanDojo ``.json`` file or folder, or
a Lean project folder) into a :class:`Dataset`; :meth:`Dataset.select` filters it by split, name glob, category and
count. A list of known-defective statements (wrong or unprovable formalisations) can be attached; reports show it.
Every malformed input is a :class:`~malot.errors.DatasetError` that names the file and line (or entry).
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from malot.errors import DatasetError
from malot.eval.problems import CATEGORIES, CATEGORY_ALIASES, BenchmarkProblem

__all__ = [
    "Dataset",
    "load_dataset",
    "load_defects",
    "load_jsonl",
    "load_lean_project",
    "load_leandojo",
    "resolve_category",
]

_SPLIT_ALIASES = {"validation": "valid", "val": "valid", "dev": "valid"}
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(slots=True)
class Dataset:
    """Problems in a stable order, where they came from, and the statements known to be defective."""

    name: str
    problems: list[BenchmarkProblem]
    source: str = ""
    defects: dict[str, str] = field(default_factory=dict)
    #: The Lean toolchain the statements were formalised against (``None``: unknown, checked as configured).
    toolchain: str | None = None

    def __len__(self) -> int:
        return len(self.problems)

    def names(self) -> list[str]:
        """Problem names in dataset order."""
        return [p.name for p in self.problems]

    def get(self, name: str) -> BenchmarkProblem:
        """The problem called ``name``; an unknown name is an error that lists close matches."""
        for problem in self.problems:
            if problem.name == name:
                return problem
        raise DatasetError(_unknown_name_message(name, self.names(), self.name))

    def with_defects(self, defects: dict[str, str]) -> Dataset:
        """A copy with ``defects`` (name -> reason) attached; names not in the dataset are errors."""
        for name in defects:
            if name not in set(self.names()):
                raise DatasetError(_unknown_name_message(name, self.names(), self.name, what="defect list names"))
        return replace(self, defects={**self.defects, **defects})

    def select(
        self,
        *,
        split: str | None = None,
        names: Sequence[str] = (),
        categories: Sequence[str] = (),
        count: int | None = None,
        skip_defective: bool = False,
    ) -> Dataset:
        """Filter by split, name globs (``amc12a_*``), categories and a maximum count, keeping dataset order.

        A name without glob characters must exist (else the error lists close matches); a glob must match
        something.
        """
        problems = list(self.problems)
        if split is not None:
            wanted = normalise_split(split)
            splits = sorted({p.split for p in problems})
            if wanted not in splits:
                raise DatasetError(f"dataset {self.name} has no split {split!r}", hint=f"splits: {', '.join(splits)}")
            problems = [p for p in problems if p.split == wanted]
        if names:
            known = [p.name for p in problems]
            for pattern in names:
                if not any(fnmatch.fnmatchcase(n, pattern) for n in known):
                    raise DatasetError(_unknown_name_message(pattern, known, self.name))
            problems = [p for p in problems if any(fnmatch.fnmatchcase(p.name, pat) for pat in names)]
        if categories:
            cats = {resolve_category(c) for c in categories}
            problems = [p for p in problems if p.category in cats]
        if skip_defective:
            problems = [p for p in problems if p.name not in self.defects]
        if count is not None:
            if count < 1:
                raise DatasetError(f"count must be at least 1, got {count}")
            problems = problems[:count]
        if not problems:
            raise DatasetError(
                f"no problem of dataset {self.name} is left after the filters",
                hint="loosen --split/--filter/--category",
            )
        kept = {p.name for p in problems}
        defects = {k: v for k, v in self.defects.items() if k in kept}
        return Dataset(self.name, problems, self.source, defects, self.toolchain)


def normalise_split(split: str) -> str:
    """``validation``/``val`` -> ``valid``; other names lower-cased."""
    lowered = split.strip().lower()
    return _SPLIT_ALIASES.get(lowered, lowered)


def resolve_category(name: str) -> str:
    """A category name or alias (``mathd-nt``) -> its canonical name; unknown ones are errors."""
    lowered = name.strip().lower()
    canonical = CATEGORY_ALIASES.get(lowered, lowered.replace("-", "_"))
    if canonical not in CATEGORIES:
        close = difflib.get_close_matches(lowered, list(CATEGORIES) + list(CATEGORY_ALIASES), n=3)
        hint = f"did you mean {', '.join(close)}?" if close else f"categories: {', '.join(CATEGORIES)}"
        raise DatasetError(f"unknown category {name!r}", hint=hint)
    return canonical


def _unknown_name_message(name: str, known: Sequence[str], dataset: str, what: str = "no problem") -> str:
    stem = _GLOB_CHARS.split(name, maxsplit=1)[0] if _GLOB_CHARS.search(name) else name
    close = difflib.get_close_matches(stem, list(known), n=5, cutoff=0.6)
    if not close and stem:
        close = [k for k in known if k.startswith(stem[: max(3, len(stem) // 2)])][:5]
    lead = f"{what} {name!r}" if what != "no problem" else f"no problem matches {name!r}"
    if what != "no problem":
        lead += " is not a problem"
    tail = f"; close matches: {', '.join(close)}" if close else ""
    return f"{lead} in dataset {dataset}{tail}"


# --------------------------------------------------------------------------------------------------- loaders


def load_dataset(
    spec: str | Path,
    *,
    defects: str | Path | None = None,
    leandojo_header: str = "import Mathlib\n",
    leandojo_source: str | Path | None = None,
) -> Dataset:
    """Load a dataset from a spec: ``minif2f`` or ``putnambench[:given|:produced]`` (shipped with malot), a
    ``.jsonl`` file, a LeanDojo ``.json`` file or benchmark folder, or a Lean project folder (its theorems proved
    by ``sorry``)."""
    text = str(spec)
    if text.lower() in ("minif2f", "minif2f-lean4"):
        from malot.data import MINIF2F_JSONL
        from malot.lean.projects import PINNED_PROJECTS

        dataset = replace(load_jsonl(MINIF2F_JSONL, name="minif2f"), toolchain=PINNED_PROJECTS["minif2f"].toolchain)
    elif text.lower().split(":", 1)[0] == "putnambench":
        from malot.eval.putnam import load_putnambench

        dataset = load_putnambench(text.split(":", 1)[1] if ":" in text else "given")
    else:
        path = Path(text).expanduser()
        if not path.exists():
            raise DatasetError(
                f"dataset {text!r} is neither 'minif2f' nor an existing file or folder",
                hint="pass minif2f, a JSONL file, a LeanDojo JSON file/folder or a Lean project folder",
            )
        if path.is_file() and path.suffix == ".jsonl":
            dataset = load_jsonl(path)
        elif path.is_file() and path.suffix == ".json":
            dataset = load_leandojo(path, header=leandojo_header, source=leandojo_source)
        elif path.is_file() and path.suffix == ".lean":
            dataset = load_lean_project(path)
        elif path.is_dir() and _looks_like_leandojo(path):
            dataset = load_leandojo(path, header=leandojo_header, source=leandojo_source)
        elif path.is_dir() and list(path.glob("*.jsonl")) and not any(path.glob("*.lean")):
            dataset = _load_jsonl_folder(path)
        elif path.is_dir():
            dataset = load_lean_project(path)
        else:
            raise DatasetError(f"cannot tell the format of dataset file {path}", hint="use .jsonl, .json or .lean")
    if defects is not None:
        dataset = dataset.with_defects(load_defects(defects))
    return dataset


def load_jsonl(path: str | Path, *, name: str | None = None) -> Dataset:
    """A JSONL file with one problem per line: ``name``, ``split``, ``header``, ``formal_statement`` and an
    optional ``informal_statement`` (the MiniF2F layout malot ships)."""
    p = Path(path)
    problems: list[BenchmarkProblem] = []
    seen: dict[str, int] = {}
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read dataset {p}: {exc}") from None
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{p}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(row, dict):
            raise DatasetError(f"{p}:{lineno}: expected a JSON object, got {type(row).__name__}")
        if "formal_statement" not in row and isinstance(row.get("statement"), str):
            row["formal_statement"] = row["statement"]  # the provers' suite layout
        missing = [k for k in ("name", "formal_statement") if not isinstance(row.get(k), str) or not row.get(k)]
        if missing:
            raise DatasetError(
                f"{p}:{lineno}: missing or empty field(s) {', '.join(missing)}",
                hint="each line needs name, split, header, formal_statement (informal_statement optional)",
            )
        problem_name = row["name"]
        if problem_name in seen:
            first = seen[problem_name]
            raise DatasetError(f"{p}:{lineno}: duplicate problem name {problem_name!r} (first on line {first})")
        seen[problem_name] = lineno
        try:
            problems.append(
                BenchmarkProblem(
                    name=problem_name,
                    split=normalise_split(str(row.get("split") or "test")),
                    header=str(row.get("header") or ""),
                    statement=row["formal_statement"],
                    informal=row.get("informal_statement") or row.get("informal") or None,
                    source=f"{p.name}:{lineno}",
                )
            )
        except ValidationError as exc:
            raise DatasetError(f"{p}:{lineno}: invalid problem: {exc.errors()[0]['msg']}") from None
    if not problems:
        raise DatasetError(f"dataset {p} has no problems")
    return Dataset(name or p.stem, problems, str(p))


def _load_jsonl_folder(path: Path) -> Dataset:
    """Every ``*.jsonl`` file of a folder (e.g. ``shared/datasets/minif2f``) as one dataset."""
    parts = [load_jsonl(f) for f in sorted(path.glob("*.jsonl"))]
    problems: list[BenchmarkProblem] = []
    seen: dict[str, str] = {}
    for part in parts:
        for problem in part.problems:
            if problem.name in seen:
                raise DatasetError(f"problem {problem.name!r} is in both {seen[problem.name]} and {problem.source}")
            seen[problem.name] = problem.source
            problems.append(problem)
    return Dataset(path.name, problems, str(path))


_DECL = re.compile(
    r"^(?:@\[[^\]]*\]\s*)?(?:(?:private|protected|nonrec)\s+)*(theorem|lemma|example)\s+([^\s:({\[]*)", re.M
)
_DOC_BEFORE = re.compile(r"/--(.*?)-/\s*", re.S)
_SORRY_TAIL = re.compile(r":=\s*(by\s+)?sorry\s*$", re.S)


def load_lean_project(path: str | Path, *, name: str | None = None) -> Dataset:
    """Theorems proved by ``sorry`` in a Lean project's ``.lean`` files (or one file).

    The header of each problem is its file's text before the first declaration; a ``/-- docstring -/`` right
    before a theorem becomes its informal statement; the split comes from a path component named ``test``,
    ``valid`` or ``train`` (MiniF2F's Lake project), else ``test``. Lake build output (``.lake``) is skipped.
    """
    root = Path(path)
    files = [root] if root.is_file() else sorted(f for f in root.rglob("*.lean") if ".lake" not in f.parts)
    problems: list[BenchmarkProblem] = []
    seen: dict[str, str] = {}
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DatasetError(f"cannot read Lean file {file}: {exc}") from None
        rel = file.relative_to(root) if root.is_dir() else Path(file.name)
        split = _split_from_path(rel)
        decls = list(_DECL.finditer(text))
        if not decls:
            continue
        first = decls[0].start()
        header_text = text[:first]
        doc_start, _ = _doc_right_before(header_text)
        header = header_text[:doc_start] if doc_start is not None else header_text
        for i, match in enumerate(decls):
            end = decls[i + 1].start() if i + 1 < len(decls) else len(text)
            chunk = text[match.start() : end]
            nxt_doc = chunk.rfind("/--")
            if nxt_doc > 0 and i + 1 < len(decls):
                chunk = chunk[:nxt_doc]
            chunk = chunk.rstrip()
            tail = _SORRY_TAIL.search(chunk)
            if tail is None or match.group(1) == "example":
                continue  # proved already, or nothing to name
            theorem_name = match.group(2)
            lineno = text.count("\n", 0, match.start()) + 1
            where = f"{rel}:{lineno}"
            if theorem_name in seen:
                other = seen[theorem_name]
                raise DatasetError(f"{file}:{lineno}: duplicate theorem {theorem_name!r} (also at {other})")
            seen[theorem_name] = where
            statement = chunk[: tail.start()].rstrip() + (" := by" if tail.group(1) else " :=")
            _, informal = _doc_right_before(text[: match.start()])
            problems.append(
                BenchmarkProblem(
                    name=theorem_name, split=split, header=header, statement=statement, informal=informal, source=where
                )
            )
    if not problems:
        raise DatasetError(
            f"no theorem ending in sorry found under {root}",
            hint="a Lean project dataset is the theorems whose proof is `sorry` (e.g. MiniF2F's Lake project)",
        )
    return Dataset(name or root.stem, problems, str(root))


def _doc_right_before(text: str) -> tuple[int | None, str | None]:
    """Where the ``/-- ... -/`` doc comment that ends ``text`` starts, and its text (``None`` when there is none)."""
    start = text.rfind("/--")
    if start < 0:
        return None, None
    match = _DOC_BEFORE.fullmatch(text, start)
    if match is None:
        return None, None
    return start, match.group(1).strip()


def _split_from_path(rel: Path) -> str:
    for part in reversed(rel.parts):
        stem = Path(part).stem.lower()
        if stem in ("test", "valid", "validation", "val", "train"):
            return normalise_split(stem)
    return "test"


def _looks_like_leandojo(path: Path) -> bool:
    return any((path / sub).is_dir() for sub in ("random", "novel_premises")) or any(
        (path / f"{s}.json").is_file() for s in ("train", "val", "test")
    )


def load_leandojo(
    path: str | Path,
    *,
    header: str = "import Mathlib\n",
    source: str | Path | None = None,
    benchmark_split: str = "random",
) -> Dataset:
    """The LeanDojo benchmark layout: ``{random,novel_premises}/{train,val,test}.json`` (or one such file), each a
    JSON list of theorems with ``full_name``, ``file_path``, ``start``, ``end``, ``traced_tactics`` and, in newer
    releases, ``theorem_statement``. Without ``theorem_statement`` the statement is cut from ``source`` (the traced
    repository) between ``start`` and the proof's ``:=``."""
    root = Path(path)
    if root.is_file():
        files = [root]
    else:
        base = root / benchmark_split if (root / benchmark_split).is_dir() else root
        files = [base / f"{s}.json" for s in ("train", "val", "test") if (base / f"{s}.json").is_file()]
    problems: list[BenchmarkProblem] = []
    seen: set[str] = set()
    for file in files:
        split = normalise_split(file.stem)
        try:
            entries = json.loads(file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{file}:{exc.lineno}: not valid JSON ({exc.msg})") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise DatasetError(f"cannot read {file}: {exc}") from None
        if not isinstance(entries, list):
            raise DatasetError(f"{file}: expected a JSON list of theorems (the LeanDojo layout)")
        for index, entry in enumerate(entries):
            where = f"{file} entry {index}"
            if not isinstance(entry, dict) or not isinstance(entry.get("full_name"), str):
                raise DatasetError(f"{where}: expected an object with full_name, file_path, start, end")
            full_name = entry["full_name"]
            if full_name in seen:
                continue  # the same theorem listed twice in LeanDojo's splits; keep the first
            statement = entry.get("theorem_statement")
            if not statement:
                statement = _statement_from_source(entry, source, where)
            statement = _strip_proof(statement)
            seen.add(full_name)
            problems.append(
                BenchmarkProblem(name=full_name, split=split, header=header, statement=statement, source=where)
            )
    if not problems:
        raise DatasetError(f"no LeanDojo theorems found in {root}", hint="expected random/{train,val,test}.json")
    return Dataset(root.stem, problems, str(root))


def _statement_from_source(entry: dict[str, Any], source: str | Path | None, where: str) -> str:
    if source is None:
        raise DatasetError(
            f"{where} ({entry['full_name']}) has no theorem_statement",
            hint="pass the traced repository folder as the LeanDojo source so statements can be cut from it",
        )
    file = Path(source) / str(entry.get("file_path", ""))
    start = entry.get("start")
    if not file.is_file() or not isinstance(start, list) or len(start) != 2:
        raise DatasetError(f"{where}: cannot find {file} at {start!r} to read the statement of {entry['full_name']}")
    lines = file.read_text(encoding="utf-8").splitlines(keepends=True)
    line, col = int(start[0]), int(start[1])
    text = "".join(lines[line - 1 :])[max(col - 1, 0) :]
    end = entry.get("end")
    if isinstance(end, list) and len(end) == 2:
        span = "".join(lines[line - 1 : int(end[0])])[max(col - 1, 0) :]
        text = span if ":=" in span else text
    return text


def _strip_proof(statement: str) -> str:
    """Keep a statement up to its proof: ``... := by`` stays, ``... := by simp`` becomes ``... := by``."""
    index = _top_level_assign(statement)
    if index is None:
        return statement.rstrip()
    rest = statement[index + 2 :].lstrip()
    head = statement[:index].rstrip()
    return head + (" := by" if rest.startswith("by") or not rest else " :=")


def _top_level_assign(text: str) -> int | None:
    depth = 0
    i = 0
    while i < len(text) - 1:
        ch = text[i]
        if ch in "([{⟨":
            depth += 1
        elif ch in ")]}⟩":
            depth -= 1
        elif ch == ":" and text[i + 1] == "=" and depth <= 0:
            return i
        i += 1
    return None


def load_defects(path: str | Path) -> dict[str, str]:
    """A known-defects list: JSON object ``{name: reason}``, JSONL rows ``{"name", "reason"}``, or text lines
    ``name  reason`` (``#`` starts a comment)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read defect list {p}: {exc}") from None
    out: dict[str, str] = {}
    if p.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{p}:{exc.lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(data, dict):
            raise DatasetError(f"{p}: expected a JSON object mapping problem names to reasons")
        return {str(k): str(v) for k, v in data.items()}
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if p.suffix == ".jsonl":
            try:
                row = json.loads(stripped)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{p}:{lineno}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict) or not isinstance(row.get("name"), str):
                raise DatasetError(f"{p}:{lineno}: expected an object with name and reason")
            out[row["name"]] = str(row.get("reason", ""))
        else:
            name, _, reason = stripped.partition(" ")
            out[name] = reason.split("#", 1)[0].strip() or "known defective"
    return out


def iter_categories(problems: Iterable[BenchmarkProblem]) -> dict[str, int]:
    """How many problems fall in each category, in report order."""
    counts = dict.fromkeys(CATEGORIES, 0)
    for p in problems:
        counts[p.category] += 1
    return {k: v for k, v in counts.items() if v}
