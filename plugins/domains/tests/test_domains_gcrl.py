"""GCRL: the mixture posterior's closed form, and adaptation that changes only the variant prior."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from malot_domains.core.synthetic import style_trajectories  # noqa: E402
from malot_domains.gcrl import (  # noqa: E402
    PRIOR_PREFIX,
    adapt_variant_prior,
    displacement_errors,
    elbo_loss,
    fit_gcrl,
    gcrl_model,
    mixture_posterior,
)

from malot.errors import ToolError  # noqa: E402
from malot.tools import get_registry  # noqa: E402


def test_one_component_posterior_is_the_gaussian_product() -> None:
    m, logv = torch.tensor([[0.3, -1.0]]), torch.log(torch.tensor([[0.5, 2.0]]))
    mu, logs = torch.tensor([[1.0, 0.0]]), torch.log(torch.tensor([[1.5, 0.25]]))
    weights, mean, logvar = mixture_posterior(m, logv, torch.zeros(1), mu, logs)
    v, s2 = logv.exp(), logs.exp()
    expected_var = v * s2 / (v + s2)
    expected_mean = (m * s2 + mu * v) / (v + s2)
    assert torch.allclose(weights, torch.ones(1, 1))
    assert torch.allclose(mean[:, 0], expected_mean)
    assert torch.allclose(logvar[:, 0].exp(), expected_var)


def test_a_flat_prior_leaves_the_evidence_and_weights_follow_the_marginal_likelihood() -> None:
    m, logv = torch.tensor([[0.7]]), torch.zeros(1, 1)
    _, mean, logvar = mixture_posterior(m, logv, torch.zeros(1), torch.zeros(1, 1), torch.full((1, 1), 30.0))
    assert torch.allclose(mean, m[:, None], atol=1e-6) and torch.allclose(logvar, logv[:, None], atol=1e-6)
    # two components at ±2 with unit variance, evidence at +2 with unit variance: weights ∝ π_k N(2; μ_k, 2)
    mus = torch.tensor([[2.0], [-2.0]])
    weights, _, _ = mixture_posterior(torch.tensor([[2.0]]), torch.zeros(1, 1), torch.zeros(2), mus, torch.zeros(2, 1))
    ratio = math.exp(-0.5 * 0 / 2) / math.exp(-0.5 * 16 / 2)
    assert float(weights[0, 0] / weights[0, 1]) == pytest.approx(ratio, rel=1e-4)
    assert float(weights.sum()) == pytest.approx(1.0)


def _data(seed: int, curvature: float, count: int) -> tuple[np.ndarray, np.ndarray]:
    x, y, _ = style_trajectories(seed, count, (curvature, 0.02), (0.0, 0.005), noise=0.15)
    return x, y


def test_adaptation_changes_only_the_variant_prior_and_moves_the_forecast() -> None:
    torch.manual_seed(0)
    model = gcrl_model(8, 12)
    sx, sy = _data(0, 0.05, 256)
    fit_gcrl(model, sx, sy, steps=40)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    tx, ty = _data(1, -0.1, 64)
    with torch.no_grad():
        forecast_before = model.predict(torch.tensor(tx))  # type: ignore[operator]
    changed = adapt_variant_prior(model, tx, ty, steps=30, lr=0.05)
    assert changed and all(name.startswith(PRIOR_PREFIX) for name in changed)
    for name, param in model.named_parameters():
        if not name.startswith(PRIOR_PREFIX):
            assert torch.equal(param.detach(), before[name]), name  # bit-identical
    assert all(p.requires_grad for p in model.parameters())  # flags restored
    with torch.no_grad():
        forecast_after = model.predict(torch.tensor(tx))  # type: ignore[operator]
    assert not torch.allclose(forecast_before, forecast_after)  # the prior reaches the forecast


def test_training_lowers_the_negative_elbo_and_errors_are_finite() -> None:
    torch.manual_seed(1)
    model = gcrl_model(8, 12)
    x, y = _data(2, 0.0, 200)
    first = float(elbo_loss(model, torch.tensor(x), torch.tensor(y)).detach())
    losses = fit_gcrl(model, x, y, steps=60)
    assert float(np.mean(losses[-10:])) < first
    ade, fde = displacement_errors(model, x, y)
    assert 0 < ade <= fde + 1e-6 or ade > 0


def _write(path: Path, x: np.ndarray, y: np.ndarray) -> str:
    np.savez(path, X=x, Y=y)
    return str(path)


def test_tool_runs_through_the_registry(tmp_path: Path) -> None:
    src = _write(tmp_path / "s.npz", *_data(3, 0.05, 128))
    tgt = _write(tmp_path / "t.npz", *_data(4, -0.05, 48))
    out = get_registry().run_sync(
        "gcrl_adapt",
        {"source": src, "target": tgt, "adapt_samples": 16, "train_steps": 20, "adapt_steps": 10},
        isolation="inline",
    )
    assert set(out.changed_parameters) <= {"prior_s.logits", "prior_s.mean", "prior_s.logvar"}  # type: ignore[attr-defined]
    assert out.test_samples == 32  # type: ignore[attr-defined]
    assert out.ade_after > 0  # type: ignore[attr-defined]


def test_bad_inputs_give_clear_errors(tmp_path: Path) -> None:
    registry = get_registry()
    x, y = _data(5, 0.0, 20)
    src = _write(tmp_path / "s.npz", x, y)
    short = _write(tmp_path / "short.npz", x[:, :5], y)
    with pytest.raises(ToolError, match="lengths"):
        registry.run_sync("gcrl_adapt", {"source": src, "target": short}, isolation="inline")
    with pytest.raises(ToolError, match="adapt_samples"):
        registry.run_sync("gcrl_adapt", {"source": src, "target": src, "adapt_samples": 20}, isolation="inline")
    three_d = _write(tmp_path / "3d.npz", np.zeros((4, 8, 3)), np.zeros((4, 12, 3)))
    with pytest.raises(ToolError, match="coordinates"):
        registry.run_sync("gcrl_adapt", {"source": three_d, "target": src}, isolation="inline")
    mismatched = _write(tmp_path / "m.npz", x, y[:-1])
    with pytest.raises(ToolError, match="futures"):
        registry.run_sync("gcrl_adapt", {"source": mismatched, "target": src}, isolation="inline")
    nan = x.copy()
    nan[0, 0, 0] = np.nan
    with pytest.raises(ToolError, match="NaN"):
        registry.run_sync(
            "gcrl_adapt", {"source": _write(tmp_path / "n.npz", nan, y), "target": src}, isolation="inline"
        )
