"""latent_label_shift: planted latent-label-shift data give back p(y|d) up to a permutation; bad input is refused."""

from __future__ import annotations

import numpy as np
import pytest
from malot_fewshot.core.matching import best_permutation
from malot_fewshot.latent_label_shift import LatentLabelShiftInput, ddfa, factorise, latent_label_shift

from malot.errors import ToolError
from malot.tools import ToolRegistry

TRUE = np.array([[0.8, 0.1, 0.1, 0.4], [0.1, 0.8, 0.1, 0.3], [0.1, 0.1, 0.8, 0.3]])


def _planted(seed: int, per_domain: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(3, 5)) * 6
    xs, ds, ys = [], [], []
    for d in range(4):
        y = rng.choice(3, size=per_domain, p=TRUE[:, d])
        xs.append(means[y] + rng.normal(size=(per_domain, 5)))
        ds.append(np.full(per_domain, d))
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ds), np.concatenate(ys)


def test_factorisation_of_an_exact_anchored_matrix_is_exact() -> None:
    a_true = np.array([[0.7, 0.0, 0.0], [0.0, 0.6, 0.0], [0.0, 0.0, 0.9], [0.3, 0.4, 0.1]])
    q = a_true @ TRUE
    a, b = factorise(q, 3)
    perm = best_permutation(b @ TRUE.T)
    recovered = np.zeros_like(b)
    recovered[perm] = b
    np.testing.assert_allclose(recovered, TRUE, atol=1e-9)
    np.testing.assert_allclose(a[:, np.argsort(perm)], a_true, atol=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_planted_data_recover_the_empirical_label_marginals_up_to_permutation(seed: int) -> None:
    x, domains, y = _planted(seed)
    result = ddfa(x, domains, 3)
    empirical = np.stack([np.bincount(y[domains == d], minlength=3) / (domains == d).sum() for d in range(4)], 1)
    confusion = np.zeros((3, 3))
    np.add.at(confusion, (result.labels, y), 1.0)
    perm = best_permutation(confusion)
    recovered = np.zeros_like(result.label_given_domain)
    recovered[perm] = result.label_given_domain
    np.testing.assert_allclose(recovered, empirical, atol=1e-6)  # pure clusters: exact up to the permutation
    assert (perm[result.labels] == y).mean() == 1.0


def test_tool_through_the_registry() -> None:
    x, domains, _ = _planted(2, per_domain=150)
    registry = ToolRegistry()
    registry.register(latent_label_shift)
    out = registry.run_sync(
        "latent_label_shift", {"x": x.tolist(), "domains": domains.tolist(), "n_classes": 3}
    ).model_dump()
    table = np.array(out["label_given_domain"])
    assert table.shape == (3, 4)
    np.testing.assert_allclose(table.sum(0), 1.0, atol=1e-5)
    assert len(out["labels"]) == len(x)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"n_classes": 3}, "at least as many domains"),
        ({"domains": [0, 0, 0, 0]}, "two non-empty"),
        ({"domains": [0, 2, 0, 2]}, "two non-empty"),
        ({"x": [[0.0], [1.0], [float("inf")], [2.0]]}, "NaN"),
        ({"n_clusters": 9}, "n_clusters"),
    ],
)
def test_bad_input_is_one_clear_error(change: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"x": [[0.0], [1.0], [2.0], [3.0]], "domains": [0, 1, 0, 1], "n_classes": 2}
    base.update(change)
    with pytest.raises(ToolError, match=message):
        latent_label_shift(LatentLabelShiftInput.model_validate(base))
