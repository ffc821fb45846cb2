"""Metrics: the unbiased pass@k estimator, solved counts per category, and the compute ledger.

pass@k for one problem with ``n`` samples of which ``c`` are correct is ``1 - C(n-c, k) / C(n, k)`` (the
probability that k samples drawn without replacement from the n include a correct one). It is computed as the
product ``prod_{i=n-c+1}^{n} (1 - k/i)``, which never forms the huge binomials. A benchmark's pass@k is the mean
over problems; problems with ``n < k`` count as solved when ``c > 0`` (any draw of k would include all of them).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from malot.eval.problems import CATEGORIES
from malot.eval.store import ProblemRow

__all__ = ["ComputeLedger", "category_table", "compute_ledger", "pass_at_k", "pass_at_k_curve"]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k estimate for one problem: n samples, c correct, k drawn."""
    if n < 0 or c < 0 or c > n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if c == 0:
        return 0.0
    if n - c < k:
        return 1.0
    miss = 1.0
    for i in range(n - c + 1, n + 1):
        miss *= 1.0 - k / i
    return 1.0 - miss


def pass_at_k_curve(rows: Sequence[tuple[int, int]], ks: Iterable[int] | None = None) -> dict[int, float]:
    """Mean pass@k over problems given as ``(n, c)`` pairs, for every k in ``ks`` (default 1..max n)."""
    if not rows:
        return {}
    max_n = max(n for n, _ in rows)
    wanted = list(ks) if ks is not None else list(range(1, max(max_n, 1) + 1))
    return {k: math.fsum(pass_at_k(n, c, k) for n, c in rows) / len(rows) for k in wanted}


def category_table(rows: Sequence[ProblemRow]) -> dict[str, dict[str, int]]:
    """Per category (report order): problems, done, solved."""
    table: dict[str, dict[str, int]] = {}
    for cat in CATEGORIES:
        members = [r for r in rows if r.category == cat]
        if members:
            table[cat] = {
                "problems": len(members),
                "done": sum(r.status == "done" for r in members),
                "solved": sum(r.solved for r in members),
            }
    return table


@dataclass(slots=True)
class ComputeLedger:
    """What a run spent: samples, tokens in/out, Lean seconds (CPU and wall), attempt wall time, run wall time."""

    attempts: int
    samples: int
    tokens_in: int
    tokens_out: int
    lean_cpu_s: float
    lean_s: float
    attempt_wall_s: float
    run_wall_s: float
    solved: int
    abandoned_attempts: int
    expansions: int = 0
    tactic_calls: int = 0
    search_by_problem: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def per_solved(self) -> dict[str, float | None]:
        """Cost per solved problem (``None`` when nothing was solved)."""
        if not self.solved:
            return {"samples": None, "tokens": None, "lean_cpu_s": None, "run_wall_s": None}
        return {
            "samples": self.samples / self.solved,
            "tokens": (self.tokens_in + self.tokens_out) / self.solved,
            "lean_cpu_s": self.lean_cpu_s / self.solved,
            "run_wall_s": self.run_wall_s / self.solved,
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict including the per-solved costs."""
        return {**asdict(self), "per_solved": self.per_solved}


def compute_ledger(
    attempts: Sequence[dict[str, Any]],
    final_attempt_ids: set[int],
    sessions: Sequence[dict[str, Any]],
    solved: int,
) -> ComputeLedger:
    """Sum every attempt a run made (including those of interrupted sessions, which were real compute).

    ``samples`` counts distinct (problem, session, sample) triples; ``run_wall_s`` sums the sessions' durations.
    Tactic-search attempts (``flags["search"]``) add their expansions and tactic calls, in total and per problem.
    """
    by_problem: dict[str, dict[str, int]] = {}
    for a in attempts:
        search = (a.get("flags") or {}).get("search")
        if isinstance(search, dict):
            row = by_problem.setdefault(str(a["problem"]), {"expansions": 0, "tactic_calls": 0})
            row["expansions"] += int(search.get("expansions", 0))
            row["tactic_calls"] += int(search.get("tactic_calls", 0))
    samples = len({(a["problem"], a["session"], a["sample"]) for a in attempts})
    run_wall = 0.0
    for s in sessions:
        end = s.get("finished") or s.get("last_seen") or s["started"]
        run_wall += max(float(end) - float(s["started"]), 0.0)
    return ComputeLedger(
        attempts=len(attempts),
        samples=samples,
        tokens_in=sum(int(a["tokens_in"]) for a in attempts),
        tokens_out=sum(int(a["tokens_out"]) for a in attempts),
        lean_cpu_s=math.fsum(float(a["lean_cpu_s"]) for a in attempts),
        lean_s=math.fsum(float(a["lean_s"]) for a in attempts),
        attempt_wall_s=math.fsum(float(a["wall_s"]) for a in attempts),
        run_wall_s=run_wall,
        solved=solved,
        abandoned_attempts=sum(1 for a in attempts if a["id"] not in final_attempt_ids),
        expansions=sum(r["expansions"] for r in by_problem.values()),
        tactic_calls=sum(r["tactic_calls"] for r in by_problem.values()),
        search_by_problem=by_problem,
    )
