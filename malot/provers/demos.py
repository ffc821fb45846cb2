"""Few-shot demonstrations for the prover prompt: from a :mod:`malot.retrieval` retriever when one is given, else a
seeded random sample of the solved demonstrations shipped in :mod:`malot.data` (never the problem itself).
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from malot.provers.problem import DEFAULT_HEADER, Problem

__all__ = ["Demo", "DemoSource", "load_demo_file", "pick_demonstrations"]

#: A demonstration as the templates read it: name, informal, header, statement, proof.
Demo = dict[str, str]


class DemoSource:
    """Demonstrations as configured by ``[retrieval]``: the retriever is built once, on first use.

    ``retriever`` is used as given; otherwise :func:`malot.retrieval.load_retriever` builds one (when
    :mod:`malot.retrieval` is importable) and :func:`pick_demonstrations` falls back to a random sample.
    """

    def __init__(self, settings: Any, retriever: Any = None) -> None:
        self.settings = settings
        self._retriever = retriever
        self._loaded = retriever is not None

    def retriever(self) -> Any:
        """The retriever in use (``None``: random sampling)."""
        if not self._loaded:
            self._loaded = True
            try:
                from malot.retrieval import load_retriever
            except ImportError:
                self._retriever = None
            else:
                self._retriever = load_retriever(self.settings)
        return self._retriever

    def pick(self, problem: Problem, uses_demonstrations: bool = True) -> list[Demo]:
        """Up to ``settings.k`` demonstrations for ``problem`` (none when the template takes none)."""
        k = self.settings.k
        if not uses_demonstrations or k <= 0 or self.settings.retriever == "none":
            return []
        return pick_demonstrations(
            problem, k, retriever=self.retriever(), corpus=self.settings.corpus, seed=self.settings.seed
        )


def pick_demonstrations(
    problem: Problem,
    k: int,
    *,
    retriever: Any = None,
    corpus: str | Path | None = None,
    seed: int = 0,
) -> list[Demo]:
    """Up to ``k`` demonstrations for ``problem``, in prompt order (the most relevant last).

    ``retriever`` is anything with ``retrieve(query, k)`` (a :class:`malot.retrieval.Retriever`); without one, a
    random sample of ``corpus`` (default: the shipped MiniF2F-valid solutions) seeded by ``seed`` and the problem.
    """
    if k <= 0:
        return []
    if retriever is not None:
        found = retriever.retrieve(_query(problem), k)
        demos = [_from_object(d) for d in found if getattr(d, "name", None) != problem.name]
        return list(reversed(demos))[-k:]
    pool = [d for d in load_demo_file(str(corpus) if corpus else None) if d["name"] != problem.name]
    rng = random.Random(f"{seed}:{problem.name}")
    return rng.sample(pool, min(k, len(pool)))


def _query(problem: Problem) -> Any:
    try:
        from malot.retrieval import Demonstration
    except ImportError:  # an older malot.retrieval without the model: retrieve by statement text
        return problem.statement
    return Demonstration(
        name=problem.name,
        split=problem.split or "unknown",
        informal=problem.informal or "",
        statement=problem.statement,
        header=problem.header,
    )


def _from_object(demo: Any) -> Demo:
    return {
        "name": str(getattr(demo, "name", "")),
        "informal": str(getattr(demo, "informal", "") or ""),
        "header": str(getattr(demo, "header", "") or ""),
        "statement": str(getattr(demo, "statement", "")).rstrip(),
        "proof": str(getattr(demo, "proof", "")).rstrip(),
    }


@lru_cache(maxsize=4)
def load_demo_file(path: str | None = None) -> tuple[Demo, ...]:
    """Demonstrations from a JSONL file (the shipped MiniF2F-valid solutions by default)."""
    if path is None:
        from malot.data import DEMOS_JSONL

        file = DEMOS_JSONL
    else:
        file = Path(path)
        if file.is_dir():
            candidates = sorted(file.glob("*.jsonl"))
            if not candidates:
                from malot.errors import RetrievalError

                raise RetrievalError(f"no .jsonl demonstration file in {file}", hint="pass a JSONL file")
            file = candidates[0]
    out: list[Demo] = []
    with file.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                out.append(_from_row(json.loads(line)))
    return tuple(out)


def _from_row(row: Mapping[str, Any]) -> Demo:
    informal = str(row.get("informal") or row.get("informal_prefix") or row.get("informal_statement") or "").strip()
    if informal.startswith("/--") and informal.endswith("-/"):
        informal = informal[3:-2].strip()
    return {
        "name": str(row.get("name", "")),
        "informal": informal,
        "header": str(row.get("header") or DEFAULT_HEADER),
        "statement": str(row.get("formal_statement") or row.get("statement", "")).rstrip(),
        "proof": str(row.get("formal_proof") or row.get("proof", "")).rstrip(),
    }
