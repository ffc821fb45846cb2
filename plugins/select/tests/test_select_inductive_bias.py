"""Exact inductive bias: hypotheses fit the training data, monotone in ε, ~0 beyond the largest error, χ² fit."""

from __future__ import annotations

import numpy as np
import pytest
from malot_select.inductive_bias import (
    ScaledNcx2,
    fit_scaled_ncx2,
    inductive_bias_bits,
    inductive_bias_tool,
    sample_hypothesis_errors,
)

from malot.errors import ToolError
from malot.tools import ToolRegistry


def _task(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x, xt = rng.uniform(-2, 2, (15, 2)), rng.uniform(-2, 2, (30, 2))

    def f(z: np.ndarray) -> np.ndarray:
        return np.sin(z[:, 0]) + 0.5 * z[:, 1]

    return x, f(x), xt, f(xt)


def test_hypotheses_interpolate_the_training_data() -> None:
    x, y, _, _ = _task()
    errors = sample_hypothesis_errors(x, y, x, y, samples=200, noise=1e-8)
    assert errors.max() < 1e-5  # evaluated on the training inputs every hypothesis fits them


def test_bits_are_monotone_in_epsilon_and_vanish_beyond_the_largest_error() -> None:
    x, y, xt, yt = _task()
    errors = sample_hypothesis_errors(x, y, xt, yt, samples=1000)
    fit = fit_scaled_ncx2(errors)
    eps = np.geomspace(errors.min() / 100, errors.max() * 4, 60)
    bits = inductive_bias_bits(fit, eps)
    assert np.all(np.diff(bits) <= 1e-12)
    assert bits[0] > 5  # far below anything sampled: many bits
    assert inductive_bias_bits(fit, 4 * errors.max()) < 0.01


def test_the_fit_recovers_a_known_scaled_noncentral_chi_squared() -> None:
    from scipy import stats

    true = ScaledNcx2(scale=0.5, df=4.0, nc=3.0)
    sample = true.scale * stats.ncx2.rvs(true.df, true.nc, size=4000, random_state=np.random.default_rng(1))
    for method in ("mle", "moments"):
        fit = fit_scaled_ncx2(sample, method)
        grid = np.quantile(sample, [0.01, 0.1, 0.5, 0.9])
        assert np.allclose(fit.cdf(grid), true.cdf(grid), atol=0.02), method


def test_bits_stay_finite_and_monotone_deep_in_the_noncentral_tail() -> None:
    fit = ScaledNcx2(scale=0.01, df=3.0, nc=5.0)
    eps = np.geomspace(1e-12, 1e-1, 40)
    bits = inductive_bias_bits(fit, eps)
    assert np.all(np.isfinite(bits)) and np.all(np.diff(bits) <= 1e-9)
    # where the exact CDF is still representable the approximation is not used
    assert bits[-1] == pytest.approx(-np.log2(fit.cdf(1e-1)), rel=1e-9)


def test_tool_through_the_registry_reports_fitted_and_empirical_bits() -> None:
    x, y, xt, yt = _task(2)
    registry = ToolRegistry()
    registry.register(inductive_bias_tool)
    out = registry.run_sync(
        "inductive_bias",
        {
            "train_x": x.tolist(),
            "train_y": y.tolist(),
            "test_x": xt.tolist(),
            "test_y": yt.tolist(),
            "epsilons": [1e-4, 1e-2, 10.0],
            "samples": 500,
        },
        isolation="inline",
    ).model_dump()
    assert out["bits"][0] > out["bits"][1] > out["bits"][2] >= 0
    assert out["empirical_bits"][2] == 0.0 and out["error_min"] <= out["error_mean"] <= out["error_max"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"train_y": [1.0]}, "one target per input row"),
        ({"test_x": [[0.0, 0.0, 0.0]], "test_y": [1.0]}, "input dimension"),
        ({"epsilons": [-1.0]}, "positive"),
        ({"train_x": [[0.0, float("nan")]], "train_y": [1.0]}, "NaN"),
        ({"fit": "guess"}, "unknown fit method"),
    ],
)
def test_tool_rejects_bad_input(change: dict[str, object], message: str) -> None:
    x, y, xt, yt = _task(3)
    args: dict[str, object] = {
        "train_x": x.tolist(),
        "train_y": y.tolist(),
        "test_x": xt.tolist(),
        "test_y": yt.tolist(),
        "epsilons": [0.1],
        "samples": 100,
    }
    args.update(change)
    registry = ToolRegistry()
    registry.register(inductive_bias_tool)
    with pytest.raises(ToolError, match=message):
        registry.run_sync("inductive_bias", args, isolation="inline")
