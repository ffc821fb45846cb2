"""Cost per problem, as the PutnamBench leaderboard reports it: LLM calls, tokens, Lean CPU-seconds, wall time and
money per problem, their average and median, and the cost per solved problem.

Tokens turn into money with ``[pricing]`` (per-million-token prices per model, :class:`malot.config.ModelPrice`):

.. code-block:: toml

    [pricing."deepseek-ai/DeepSeek-Prover-V2-7B"]
    prompt = 0.10      # per million prompt tokens
    completion = 0.40  # per million completion tokens

A model is priced by its exact name, else by its last path component (``DeepSeek-Prover-V2-7B``), else by the
``default`` entry; without a price the money columns are ``None`` (never a guessed number).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["ProblemCost", "cost_summary", "price_for", "problem_costs", "token_cost"]


def price_for(model: str, pricing: Mapping[str, Any]) -> tuple[float, float] | None:
    """(prompt, completion) price per million tokens for ``model`` (exact name, last path part, ``default``)."""
    for key in (model, model.rstrip("/").rsplit("/", 1)[-1], "default"):
        entry = pricing.get(key)
        if entry is not None:
            if isinstance(entry, Mapping):
                return float(entry.get("prompt", 0.0)), float(entry.get("completion", 0.0))
            return float(entry.prompt), float(entry.completion)
    return None


def token_cost(tokens_in: int, tokens_out: int, price: tuple[float, float] | None) -> float | None:
    """Money for ``tokens_in`` prompt and ``tokens_out`` completion tokens at ``price`` (per million)."""
    if price is None:
        return None
    return (tokens_in * price[0] + tokens_out * price[1]) / 1_000_000


@dataclass(slots=True)
class ProblemCost:
    """What one problem cost: LLM calls, prompt/completion tokens, Lean CPU-seconds, wall time, money."""

    problem: str
    solved: bool
    llm_calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    lean_cpu_s: float = 0.0
    wall_s: float = 0.0
    cost: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def problem_costs(
    attempts: Sequence[Mapping[str, Any]],
    problems: Sequence[Any],
    *,
    model: str,
    pricing: Mapping[str, Any],
) -> list[ProblemCost]:
    """One :class:`ProblemCost` per finished problem (``problems``: store rows with ``name``, ``solved``,
    ``wall_s``, ``status``), summed over every attempt the ledger recorded for it (``flags["llm_calls"]`` counts
    the model calls behind an attempt; older runs without it count one call per attempt with tokens)."""
    price = price_for(model, pricing)
    by_name: dict[str, ProblemCost] = {}
    for row in problems:
        if getattr(row, "status", "done") != "done":
            continue
        by_name[row.name] = ProblemCost(row.name, bool(row.solved), wall_s=float(row.wall_s or 0.0))
    for a in attempts:
        cost = by_name.get(str(a["problem"]))
        if cost is None:
            continue
        flags = a.get("flags") or {}
        calls = flags.get("llm_calls")
        tokens_in, tokens_out = int(a["tokens_in"]), int(a["tokens_out"])
        cost.llm_calls += int(calls) if calls is not None else int(tokens_in + tokens_out > 0)
        cost.tokens_in += tokens_in
        cost.tokens_out += tokens_out
        cost.lean_cpu_s += float(a["lean_cpu_s"])
    for cost in by_name.values():
        cost.cost = token_cost(cost.tokens_in, cost.tokens_out, price)
    return list(by_name.values())


def cost_summary(costs: Sequence[ProblemCost], *, priced: bool) -> dict[str, Any]:
    """Score, average and median cost per problem, and cost per solved problem (money ``None`` if unpriced)."""
    solved = sum(1 for c in costs if c.solved)

    def avg(values: list[float]) -> float | None:
        return sum(values) / len(values) if values else None

    def med(values: list[float]) -> float | None:
        return statistics.median(values) if values else None

    out: dict[str, Any] = {"problems": len(costs), "solved": solved, "score": solved / len(costs) if costs else 0.0}
    for key in ("llm_calls", "tokens_in", "tokens_out", "lean_cpu_s", "wall_s", "cost"):
        if key == "cost" and not priced:
            values: list[float] = []
        else:
            values = [float(getattr(c, key)) for c in costs if getattr(c, key) is not None]
        total = sum(values) if values else None
        out[key] = {
            "total": total,
            "mean_per_problem": avg(values),
            "median_per_problem": med(values),
            "per_solved": (total / solved) if total is not None and solved else None,
        }
    return out
