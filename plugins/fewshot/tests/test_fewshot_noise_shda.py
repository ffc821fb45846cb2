"""noise_source_shda: the noise source has exactly the requested class geometry, MMD is zero between equal samples,
the learner uses the source, and bad input is refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from malot_fewshot.noise_shda import NoiseShdaInput, mmd2, noise_source, noise_source_shda, shda_fit

from malot.errors import ToolError
from malot.tools import ToolRegistry


@pytest.mark.parametrize("separability", [0.0, 1.5, 6.0])
def test_noise_class_means_are_exactly_separability_apart(separability: float) -> None:
    x, y, means = noise_source(4, 10, 25, separability, seed=1)
    assert x.shape == (100, 10)
    assert np.bincount(y).tolist() == [25, 25, 25, 25]
    dist = np.linalg.norm(means[:, None] - means[None], axis=2)
    off_diagonal = dist[~np.eye(4, dtype=bool)]
    np.testing.assert_allclose(off_diagonal, separability, atol=1e-12)


def test_mmd_is_zero_for_identical_samples_and_positive_for_shifted_ones() -> None:
    a = torch.randn(50, 3, generator=torch.Generator().manual_seed(0))
    assert float(mmd2(a, a.clone())) == pytest.approx(0.0, abs=1e-6)
    assert float(mmd2(a, a + 3.0)) > 0.1


def _target(seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, 6)) * 2
    yl, yu = np.repeat(np.arange(3), 2), np.repeat(np.arange(3), 20)
    return centres[yl] + rng.normal(size=(6, 6)), yl, centres[yu] + rng.normal(size=(60, 6)), yu


def test_source_projection_is_trained_and_target_is_classified() -> None:
    xl, yl, xu, yu = _target(0)
    xs, ys, _ = noise_source(3, 8, 30, 6.0)
    result = shda_fit(xs, ys, xl, yl, xu, 3, steps=100)
    assert result.losses[-1] < result.losses[0]
    assert (result.labels == yu).mean() > 0.8
    np.testing.assert_allclose(result.probabilities.sum(1), 1.0, atol=1e-5)


def test_tool_through_the_registry_uses_a_noise_source_by_default() -> None:
    xl, yl, xu, _ = _target(1)
    registry = ToolRegistry()
    registry.register(noise_source_shda)
    out = registry.run_sync(
        "noise_source_shda",
        {"target_x": xl.tolist(), "target_y": yl.tolist(), "unlabelled_x": xu.tolist(), "steps": 10, "noise_dim": 8},
    ).model_dump()
    assert out["source"] == "noise(separability=4.0)"
    assert len(out["labels"]) == 60


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"target_y": [0, 0]}, "every class"),
        ({"target_y": [0, 2]}, "every class"),
        ({"unlabelled_x": [[0.0, 1.0, 2.0]]}, "columns"),
        ({"source_x": [[0.0]]}, "both source_x and source_y"),
        ({"noise_dim": 1}, "at least the number of classes"),
        ({"target_x": [[float("nan"), 0.0], [0.0, 1.0]]}, "NaN"),
    ],
)
def test_bad_input_is_one_clear_error(change: dict[str, object], message: str) -> None:
    base: dict[str, object] = {
        "target_x": [[0.0, 1.0], [1.0, 0.0]],
        "target_y": [0, 1],
        "unlabelled_x": [[0.5, 0.5]],
        "steps": 1,
    }
    base.update(change)
    with pytest.raises(ToolError, match=message):
        noise_source_shda(NoiseShdaInput.model_validate(base))
