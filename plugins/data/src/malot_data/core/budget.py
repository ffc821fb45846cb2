"""Exact integer budgets: split ``total`` items over groups in proportion to weights, summing to ``total`` exactly."""

from __future__ import annotations

from collections.abc import Sequence

from malot.errors import ToolError

__all__ = ["proportional_split"]


def proportional_split(weights: Sequence[float], total: int, caps: Sequence[int] | None = None) -> list[int]:
    """Largest-remainder split of ``total`` over ``weights`` (non-negative), never above ``caps`` where given.

    The parts sum to exactly ``total`` (raises when the caps cannot hold it). Ties go to the lower index, so the
    split is deterministic. A group with weight 0 gets nothing unless the others are all capped.
    """
    n = len(weights)
    if total < 0:
        raise ToolError(f"budget {total} is negative", hint="pass a budget of at least 0")
    if any(w < 0 or w != w for w in weights):
        raise ToolError("weights must be non-negative numbers")
    limit = list(caps) if caps is not None else [total] * n
    if sum(limit) < total:
        raise ToolError(f"budget {total} exceeds the {sum(limit)} items available", hint="lower the budget")
    parts = [0] * n
    remaining = total
    active = [i for i in range(n) if limit[i] > 0]
    while remaining > 0:
        mass = sum(weights[i] for i in active)
        shares = {i: (weights[i] / mass if mass > 0 else 1.0 / len(active)) * remaining for i in active}
        grant = {i: min(int(shares[i]), limit[i] - parts[i]) for i in active}
        left = remaining - sum(grant.values())
        order = sorted(active, key=lambda i: (-(shares[i] - int(shares[i])), i))
        for i in order:
            if left == 0:
                break
            if grant[i] < limit[i] - parts[i] and (weights[i] > 0 or mass == 0):
                grant[i] += 1
                left -= 1
        if left > 0 and sum(grant.values()) == 0:  # only zero-weight groups have room: spread evenly
            for i in sorted(active, key=lambda i: (parts[i], i)):
                if left == 0:
                    break
                if grant[i] < limit[i] - parts[i]:
                    grant[i] += 1
                    left -= 1
        for i in active:
            parts[i] += grant[i]
        remaining = total - sum(parts)
        active = [i for i in active if parts[i] < limit[i]]
    return parts
