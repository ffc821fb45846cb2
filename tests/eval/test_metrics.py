"""pass@k against hand-computed values and exact binomials; ledger and category tables."""

from __future__ import annotations

import math
import random

import pytest

from malot.eval.metrics import pass_at_k, pass_at_k_curve


def exact(n: int, c: int, k: int) -> float:
    """The definition, with exact integer binomials."""
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (5, 2, 1, 0.4),  # 2/5
        (5, 2, 2, 0.7),  # 1 - C(3,2)/C(5,2) = 1 - 3/10
        (5, 2, 3, 0.9),  # 1 - C(3,3)/C(5,3) = 1 - 1/10
        (5, 2, 4, 1.0),  # n - c < k
        (4, 0, 2, 0.0),
        (4, 4, 1, 1.0),
        (10, 1, 5, 0.5),  # 1 - C(9,5)/C(10,5) = 1 - 126/252
        (1, 0, 3, 0.0),  # fewer samples than k and nothing correct
        (2, 1, 3, 1.0),  # fewer samples than k but one correct
    ],
)
def test_pass_at_k_hand_computed(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_matches_exact_binomials_and_is_stable_for_large_n() -> None:
    rng = random.Random(0)
    for _ in range(300):
        n = rng.randint(1, 60)
        c = rng.randint(0, n)
        k = rng.randint(1, n)
        assert pass_at_k(n, c, k) == pytest.approx(exact(n, c, k), abs=1e-9)
    # C(3200, 1600) overflows a float; the product form does not
    assert pass_at_k(3200, 1, 1600) == pytest.approx(0.5, abs=1e-9)
    assert 0.0 <= pass_at_k(3200, 7, 3) <= 1.0


def test_pass_at_k_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 0)


def test_curve_is_the_mean_over_problems_for_every_k() -> None:
    curve = pass_at_k_curve([(4, 0), (4, 1), (4, 4)])
    assert list(curve) == [1, 2, 3, 4]
    assert curve[1] == pytest.approx((0 + 0.25 + 1) / 3)
    assert curve[2] == pytest.approx((0 + 0.5 + 1) / 3)
    assert curve[4] == pytest.approx((0 + 1 + 1) / 3)
    assert pass_at_k_curve([]) == {}
