"""fit_aggregate: the loss identity, ρ = 0 is the bag loss and ρ = 1 the instance loss (exact minimisers), DP noise."""

from __future__ import annotations

import numpy as np
import pytest
from malot_fewshot.aggregate import (
    AggregateInput,
    aggregate_losses,
    bag_means,
    fit_aggregate,
    fit_interpolated,
    private_bag_means,
)

from malot.errors import ToolError
from malot.tools import ToolRegistry


def _data(seed: int = 0, n: int = 120, d: int = 4, k: int = 6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = x @ rng.normal(size=d) + 0.3 * rng.normal(size=n)
    bags = rng.permutation(np.arange(n) % (n // k))
    return x, bags, y


def test_instance_loss_is_bag_loss_plus_within_bag_spread() -> None:
    x, bags, y = _data()
    ybar, _ = bag_means(y, bags)
    for theta in np.random.default_rng(1).normal(size=(5, x.shape[1])):
        losses = aggregate_losses(theta, x, bags, ybar)
        assert losses.instance == pytest.approx(losses.bag + losses.spread, rel=1e-12)
        assert losses.interpolated(0.0) == losses.bag
        assert losses.interpolated(1.0) == pytest.approx(losses.instance, rel=1e-12)


def test_rho_zero_minimises_the_bag_loss_and_rho_one_the_instance_loss() -> None:
    x, bags, y = _data()
    ybar, sizes = bag_means(y, bags)
    xbar, _ = bag_means(x, bags)
    bag_ls = np.linalg.lstsq(np.sqrt(sizes)[:, None] * xbar, np.sqrt(sizes) * ybar, rcond=None)[0]
    instance_ls = np.linalg.lstsq(x, ybar[bags], rcond=None)[0]
    np.testing.assert_allclose(fit_interpolated(x, bags, ybar, 0.0, ridge=0.0), bag_ls, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(fit_interpolated(x, bags, ybar, 1.0, ridge=0.0), instance_ls, rtol=1e-9, atol=1e-10)
    # and each ρ's solution is the minimiser of its own interpolated loss (gradient check by perturbation)
    theta = fit_interpolated(x, bags, ybar, 0.4, ridge=0.0)
    best = aggregate_losses(theta, x, bags, ybar).interpolated(0.4)
    for delta in np.eye(x.shape[1]) * 1e-3:
        assert aggregate_losses(theta + delta, x, bags, ybar).interpolated(0.4) > best
        assert aggregate_losses(theta - delta, x, bags, ybar).interpolated(0.4) > best


def test_laplace_noise_has_the_label_dp_scale() -> None:
    bags = np.repeat(np.arange(4000), 5)
    y = np.zeros(len(bags))
    noisy = private_bag_means(y, bags, epsilon=2.0, bounds=(-1.0, 1.0), rng=np.random.default_rng(0))
    # Laplace(b) has mean |noise| = b with b = (hi - lo) / (k ε) = 2 / (5 · 2) = 0.2
    assert np.abs(noisy).mean() == pytest.approx(0.2, rel=0.05)
    exact = private_bag_means(y + 3.0, bags, epsilon=None, bounds=(-1.0, 1.0), rng=np.random.default_rng(0))
    assert (exact == 1.0).all()  # clipped to the bound, no noise without ε


def test_tool_through_the_registry_matches_the_closed_form() -> None:
    x, bags, y = _data(2)
    ybar, _ = bag_means(y, bags)
    registry = ToolRegistry()
    registry.register(fit_aggregate)
    out = registry.run_sync(
        "fit_aggregate",
        {"x": x.tolist(), "bags": bags.tolist(), "bag_responses": ybar.tolist(), "rho": 0.0, "fit_intercept": False},
    ).model_dump()
    np.testing.assert_allclose(out["coef"], fit_interpolated(x, bags, ybar, 0.0), rtol=1e-9)
    assert out["interpolated_loss"] == pytest.approx(out["bag_loss"])
    dp = registry.run_sync(
        "fit_aggregate",
        {"x": x.tolist(), "bags": bags.tolist(), "responses": y.tolist(), "epsilon": 1.0, "response_bounds": [-5, 5]},
    ).model_dump()
    assert len(dp["coef"]) == x.shape[1]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"bags": [0, 2, 2], "bag_responses": [1.0, 2.0, 3.0]}, "non-empty"),
        ({"bag_responses": [1.0]}, "entries"),
        ({"x": [[1.0], [float("nan")], [0.0]]}, "NaN"),
        ({"bags": [0, 1]}, "entries"),
    ],
)
def test_bad_input_is_one_clear_error(change: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"x": [[1.0], [2.0], [3.0]], "bags": [0, 1, 1], "bag_responses": [1.0, 2.0]}
    base.update(change)
    with pytest.raises(ToolError, match=message):
        fit_aggregate(AggregateInput.model_validate(base))


def test_inputs_need_exactly_one_response_source() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        AggregateInput.model_validate({"x": [[1.0]], "bags": [0]})
