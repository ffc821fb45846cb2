"""Base scores (LogME, LEEP, NLEEP, SFDA) against their reference formulas, and PED's exact properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from malot_select.core.scores import _fda_posterior, base_score, leep, logme, logme_evidence, nleep, sfda
from malot_select.ped import class_overlaps, ped_dynamics, ped_score, ped_score_tool

from malot.errors import ToolError
from malot.tools import ToolRegistry


def _gaussian_log_evidence(f: np.ndarray, y: np.ndarray, alpha: float, beta: float) -> float:
    """LogME's Eq. 2 written directly: log N(y; 0, F Fᵀ/α + I/β) per sample."""
    n = f.shape[0]
    cov = f @ f.T / alpha + np.eye(n) / beta
    _, logdet = np.linalg.slogdet(cov)
    return float(-0.5 * (y @ np.linalg.solve(cov, y) + logdet + n * math.log(2 * math.pi)) / n)


@pytest.mark.parametrize("shape", [(40, 5), (12, 30)])  # n > D, and D > n with rank 4 (zero eigenvalues of FᵀF)
def test_logme_equals_the_gaussian_marginal_likelihood_at_its_fixed_point(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    f = (
        rng.normal(size=shape)
        if shape[0] > shape[1]
        else rng.normal(size=(shape[0], 4)) @ rng.normal(size=(4, shape[1]))
    )
    y = f @ rng.normal(size=shape[1]) * 0.3 + rng.normal(size=shape[0])
    fit = logme_evidence(f, y)
    assert fit.evidence == pytest.approx(_gaussian_log_evidence(f, y, fit.alpha, fit.beta), abs=1e-9)
    # MacKay's fixed point holds: alpha = gamma / |m|^2, beta = (n - gamma) / |Fm - y|^2
    sigma = np.linalg.eigvalsh(f.T @ f)
    gamma = float(np.sum(fit.beta * sigma / (fit.alpha + fit.beta * sigma)))
    assert fit.alpha == pytest.approx(gamma / float(fit.mean @ fit.mean), rel=1e-6)
    assert fit.beta == pytest.approx((shape[0] - gamma) / float(np.sum((f @ fit.mean - y) ** 2)), rel=1e-6)
    # and it is a maximum of the evidence over (alpha, beta)
    for da, db in [(1.2, 1.0), (0.8, 1.0), (1.0, 1.2), (1.0, 0.8)]:
        assert _gaussian_log_evidence(f, y, fit.alpha * da, fit.beta * db) < fit.evidence


def test_logme_hand_case_one_feature() -> None:
    # F = [1, 1]ᵀ, y = [1, 3]: FᵀF = 2, Fᵀy = 4. With λ = α/β the fixed point gives m = 4/(λ+2), γ = 2/(λ+2),
    # α = (λ+2)/8 and 3λ² + 4λ - 4 = 0, so λ = 2/3, α = 1/3, β = 1/2, m = 3/2. The evidence is
    # log N(y; 0, C) with C = FFᵀ/α + I/β = [[5, 3], [3, 5]]: det C = 16, yᵀC⁻¹y = 2.
    fit = logme_evidence(np.array([[1.0], [1.0]]), np.array([1.0, 3.0]))
    assert fit.alpha == pytest.approx(1 / 3, rel=1e-8)
    assert fit.beta == pytest.approx(1 / 2, rel=1e-8)
    assert float(fit.mean[0]) == pytest.approx(1.5, rel=1e-8)
    assert fit.evidence == pytest.approx(-(2 + math.log(16) + 2 * math.log(2 * math.pi)) / 4, abs=1e-9)


def test_logme_prefers_features_that_carry_the_labels() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 120)
    good = rng.normal(size=(120, 8)) + 2.0 * np.eye(8)[y]
    bad = rng.normal(size=(120, 8))
    assert logme(good, y) > logme(bad, y)


def test_leep_matches_the_hand_computed_value() -> None:
    theta = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    y = np.array([0, 1, 1])
    # P(y, z) = [[1/3, 0], [1/6, 1/2]]; P(y|z) columns [2/3, 1/3] and [0, 1]; EEP = 2/3, 1, 2/3
    assert leep(theta, y) == pytest.approx(2 / 3 * math.log(2 / 3), abs=1e-12)


def test_fda_posterior_equals_scikit_learns_shrunk_eigen_lda() -> None:
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 90)
    x = rng.normal(size=(90, 4)) + np.eye(4)[y % 4]
    ours, _ = _fda_posterior(x, y, 0.3)
    ref = LinearDiscriminantAnalysis(solver="eigen", shrinkage=0.3).fit(x, y).predict_proba(x)
    assert np.allclose(ours, ref, atol=1e-6)


def test_nleep_and_sfda_prefer_informative_features() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 100)
    good = rng.normal(size=(100, 6)) + 3.0 * np.eye(6)[y]
    bad = rng.normal(size=(100, 6))
    assert nleep(good, y) > nleep(bad, y)
    assert sfda(good, y) > sfda(bad, y)
    assert 0.0 < sfda(bad, y) < 1.0


def test_ped_without_overlap_does_not_move_features_and_equals_the_base_score() -> None:
    rng = np.random.default_rng(4)
    y = np.repeat([0, 1, 2], 20)
    x = 0.05 * rng.normal(size=(60, 3)) + 10.0 * np.eye(3)[y]
    trace = ped_dynamics(x, y, steps=10)
    assert trace.energies == [0.0] and trace.steps == 0 and trace.features is x
    for base in ("logme", "sfda", "nleep"):
        with_ped, _ = ped_score(x, y, base=base, steps=10)
        assert with_ped == base_score(base, x, y)


def test_ped_overlap_and_energy_decrease_every_step_for_two_classes() -> None:
    rng = np.random.default_rng(5)
    y = np.repeat([0, 1], 30)
    x = rng.normal(size=(60, 4)) + 0.5 * np.eye(4)[y]
    trace = ped_dynamics(x, y, steps=8, exit_ratio=0.0)
    assert trace.energies[0] > 0
    assert all(b < a for a, b in zip(trace.energies, trace.energies[1:], strict=False))
    assert trace.steps >= 1 and len(trace.movements) == trace.steps
    # classes move rigidly: within-class offsets are unchanged, and the class centres move apart
    for k in (0, 1):
        moved = trace.features[y == k] - trace.features[y == k].mean(0)
        assert np.allclose(moved, x[y == k] - x[y == k].mean(0))
    gap = np.linalg.norm(x[y == 0].mean(0) - x[y == 1].mean(0))
    assert np.linalg.norm(trace.features[y == 0].mean(0) - trace.features[y == 1].mean(0)) > gap


def test_ped_total_overlap_falls_for_many_classes() -> None:
    rng = np.random.default_rng(6)
    y = rng.integers(0, 5, 150)
    x = rng.normal(size=(150, 6)) + 0.4 * rng.normal(size=(5, 6))[y]
    trace = ped_dynamics(x, y, steps=10, dt=0.5, exit_ratio=0.0)
    mean, std = x.mean(0), x.std(0)
    _, before = class_overlaps((x - mean) / std, y, 0.6)
    _, after = class_overlaps((trace.features - mean) / std, y, 0.6)
    assert after.sum() < before.sum()
    assert trace.energies[-1] < trace.energies[0]


def test_ped_tool_ranks_candidates_through_the_registry() -> None:
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 60)
    good = (rng.normal(size=(60, 5)) + 2.5 * np.eye(5)[y]).tolist()
    bad = rng.normal(size=(60, 5)).tolist()
    registry = ToolRegistry()
    registry.register(ped_score_tool)
    out = registry.run_sync(
        "ped_score", {"features": [bad, good], "labels": y.tolist(), "names": ["bad", "good"]}, isolation="inline"
    )
    data = out.model_dump()
    assert data["ranking"] == ["good", "bad"]
    assert all(s["energy_after"] <= s["energy_before"] for s in data["scores"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"features": [[[1.0, float("nan")], [0.0, 1.0]]], "labels": [0, 1]}, "NaN"),
        ({"features": [[[1.0, 0.0], [0.0, 1.0]]], "labels": [0, 1, 1]}, "3 labels but there are 2"),
        ({"features": [[[1.0, 0.0], [0.0, 1.0]]], "labels": [1, 1]}, "fewer than 2 classes"),
        ({"features": [[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0]]], "labels": [0, 1]}, "1 rows but 2"),
        ({"features": [[]], "labels": []}, "empty"),
        ({"models": ["/nonexistent"]}, "labelled text set"),
        ({"features": [[[1.0, 0.0], [0.0, 1.0]]], "labels": [0, 1], "references": []}, "0 reference matrices"),
        ({}, "needs candidates"),
        ({"features": [[[0.0, 0.0], [0.0, 0.0]]], "labels": [0, 1], "steps": 0}, "all zero"),
    ],
)
def test_ped_tool_rejects_bad_input_with_one_clear_error(args: dict[str, object], message: str) -> None:
    registry = ToolRegistry()
    registry.register(ped_score_tool)
    with pytest.raises(ToolError, match=message):
        registry.run_sync("ped_score", args, isolation="inline")
