"""The leakage guard: demonstrations must never give away the answer being evaluated.

Two rules: a query never receives its own problem (same name or same statement) as a demonstration, and a corpus
that holds test-split solutions is refused when the target problems come from the test split.
"""

from __future__ import annotations

from collections.abc import Sequence

from malot.errors import RetrievalError
from malot.retrieval.corpus import Corpus, Demonstration

__all__ = ["LeakageGuard"]


class LeakageGuard:
    """Enforces the leakage rules for one corpus.

    ``target_split`` is the split the queries come from when it is known up front (e.g. an evaluation on MiniF2F
    test); queries that carry their own split are checked again at retrieval time.
    """

    def __init__(self, corpus: Corpus, *, target_split: str | None = None, protected_splits: Sequence[str] = ("test",)):
        self.corpus = corpus
        self.protected_splits = tuple(protected_splits)
        self._held = {s: sum(1 for d in corpus if d.split == s) for s in self.protected_splits}
        if target_split is not None:
            self.check_target_split(target_split)

    def check_target_split(self, split: str) -> None:
        """Raise :class:`RetrievalError` if the corpus holds solutions of ``split`` and that split is protected."""
        if split in self.protected_splits and self._held.get(split, 0):
            raise RetrievalError(
                f"the demonstration corpus {self.corpus.source or '(in memory)'} holds {self._held[split]} "
                f"{split}-split solutions, so it cannot serve {split}-split problems",
                hint=f"use a corpus without {split}-split rows (e.g. the shipped MiniF2F-valid demonstrations)",
            )

    def check_query(self, query: Demonstration) -> None:
        """Apply the split rule to one query that names its split."""
        self.check_target_split(query.split)

    def excluded(self, query: Demonstration) -> set[int]:
        """Corpus indexes the query must not receive: its own problem."""
        return self.corpus.same_problem_ids(query)
