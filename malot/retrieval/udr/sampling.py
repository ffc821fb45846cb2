"""Sampling the candidate lists UDR trains on: some from the top, one from the bottom, the rest from the middle."""

from __future__ import annotations

import random
from collections.abc import Sequence

__all__ = ["sample_candidate_list"]


def sample_candidate_list(
    ranked: Sequence[int], *, size: int = 8, n_top: int = 3, n_bottom: int = 1, rng: random.Random
) -> list[int]:
    """Positions (0 = the LM's best) of one training list, in LM order.

    The best candidate is always included (it is the cross-entropy positive); ``n_top - 1`` more come from the
    next ``2 * n_top`` places, ``n_bottom`` are the worst, and the rest are drawn from the middle. Short rankings
    give shorter lists (the loss masks the padding).
    """
    count = len(ranked)
    if count <= size:
        return list(range(count))
    chosen = {0}
    top_pool = list(range(1, min(count, 1 + 2 * n_top)))
    chosen.update(rng.sample(top_pool, min(len(top_pool), max(0, n_top - 1))))
    chosen.update(range(count - n_bottom, count))
    middle = [p for p in range(count) if p not in chosen]
    chosen.update(rng.sample(middle, min(len(middle), size - len(chosen))))
    return sorted(chosen)[:size]
