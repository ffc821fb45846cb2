"""Benchmark problems and their categories.

A :class:`BenchmarkProblem` is one formal statement to prove, as a dataset ships it: a name, a split, the Lean header
(imports and options) and the statement (ending in ``:= by`` or ``:=``), with an optional informal statement. The
category is derived from MiniF2F's naming scheme so results can be broken down by competition and topic.
"""

from __future__ import annotations

import hashlib
import re

from pydantic import BaseModel, ConfigDict

__all__ = ["CATEGORIES", "BenchmarkProblem", "category_of"]

#: Categories in report order; ``other`` catches names outside MiniF2F's scheme.
CATEGORIES: tuple[str, ...] = (
    "aime",
    "amc",
    "imo",
    "mathd_algebra",
    "mathd_numbertheory",
    "induction",
    "algebra",
    "numbertheory",
    "other",
)

_PREFIXES: tuple[tuple[str, str], ...] = (
    ("mathd_algebra", "mathd_algebra"),
    ("mathd_numbertheory", "mathd_numbertheory"),
    ("aime", "aime"),
    ("amc", "amc"),
    ("imo", "imo"),
    ("induction", "induction"),
    ("algebra", "algebra"),
    ("numbertheory", "numbertheory"),
)

#: Short forms accepted by ``--category`` (``mathd-algebra``, ``nt`` ...).
CATEGORY_ALIASES: dict[str, str] = {
    "mathd-algebra": "mathd_algebra",
    "mathd-numbertheory": "mathd_numbertheory",
    "mathd_nt": "mathd_numbertheory",
    "mathd-nt": "mathd_numbertheory",
    "number_theory": "numbertheory",
    "number-theory": "numbertheory",
    "nt": "numbertheory",
    "amc12": "amc",
}

_TAIL = re.compile(r"[.\s]+$")


def category_of(name: str) -> str:
    """The MiniF2F category of a problem name (``amc12a_2021_p7`` -> ``amc``); ``other`` when none fits."""
    lowered = name.rsplit(".", 1)[-1].lower()
    for prefix, category in _PREFIXES:
        if lowered.startswith(prefix):
            return category
    return "other"


class BenchmarkProblem(BaseModel):
    """One problem of a benchmark: what the runner hands to a solver and what the store records."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    split: str = "test"
    header: str = ""
    statement: str
    informal: str | None = None
    source: str = ""

    @property
    def category(self) -> str:
        """The MiniF2F category derived from the name."""
        return category_of(self.name)

    @property
    def statement_hash(self) -> str:
        """A short hash of header and statement: a resumed run checks that a problem did not change under it."""
        digest = hashlib.sha256((self.header + "\x00" + _TAIL.sub("", self.statement)).encode("utf-8"))
        return digest.hexdigest()[:16]
