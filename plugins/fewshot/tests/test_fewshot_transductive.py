"""transductive_fewshot: λ = 0 is k-means (scikit-learn), the objective never increases, bad input is refused."""

from __future__ import annotations

import numpy as np
import pytest
from malot_fewshot.transductive import TransductiveInput, laplacian_shot, transductive_fewshot

from malot.errors import ToolError
from malot.tools import ToolRegistry


def _episode(seed: int, ways: int = 4, shots: int = 2, queries: int = 12, dim: int = 6) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=2.0, size=(ways, dim))
    support = np.concatenate([c + rng.normal(size=(shots, dim)) for c in centres])
    support_y = np.repeat(np.arange(ways), shots)
    query = np.concatenate([c + rng.normal(size=(queries, dim)) for c in centres])
    query_y = np.repeat(np.arange(ways), queries)
    return support, support_y, query, query_y


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lambda_zero_is_kmeans_started_at_the_support_means(seed: int) -> None:
    from sklearn.cluster import KMeans

    support, support_y, query, _ = _episode(seed)
    ours = laplacian_shot(support, support_y, query, lam=0.0, temperature=0.0, support_weight=0.0, max_iter=300)
    init = np.stack([support[support_y == c].mean(0) for c in range(4)])
    km = KMeans(n_clusters=4, init=init, n_init=1, algorithm="lloyd", tol=0.0, max_iter=300).fit(query)
    assert (ours.labels == km.labels_).all()
    np.testing.assert_allclose(ours.prototypes, km.cluster_centers_, atol=1e-10)
    np.testing.assert_allclose(ours.energies[-1], km.inertia_, rtol=1e-9)


@pytest.mark.parametrize("temperature", [0.0, 0.5])
@pytest.mark.parametrize("lam", [0.5, 5.0])
def test_objective_never_increases_with_a_psd_affinity(lam: float, temperature: float) -> None:
    support, support_y, query, _ = _episode(3)
    result = laplacian_shot(
        support, support_y, query, lam=lam, temperature=temperature, affinity="gaussian", support_weight=1.0
    )
    steps = np.diff(result.energies)
    assert len(result.energies) > 2
    assert (steps <= 1e-9 * np.abs(result.energies[:-1]).max()).all(), steps


def test_laplacian_term_pulls_a_neighbourhood_to_one_label() -> None:
    # two tight query groups; one query of each group sits slightly nearer the other prototype
    support = np.array([[0.0, 0.0], [4.0, 0.0]])
    group_a = np.array([[1.0, 0.0], [1.4, 0.0], [1.7, 0.0], [2.05, 0.0]])
    group_b = np.array([[3.2, 0.0], [3.3, 0.0], [3.4, 0.0]])
    query = np.concatenate([group_a, group_b])
    plain = laplacian_shot(support, np.array([0, 1]), query, lam=0.0, update_prototypes=False)
    assert plain.labels[3] == 1  # nearest prototype alone gets the boundary query wrong
    lap = laplacian_shot(support, np.array([0, 1]), query, lam=2.0, knn=2, update_prototypes=False)
    assert lap.labels.tolist() == [0, 0, 0, 0, 1, 1, 1]


def test_tool_through_the_registry() -> None:
    support, support_y, query, query_y = _episode(4)
    registry = ToolRegistry()
    registry.register(transductive_fewshot)
    out = registry.run_sync(
        "transductive_fewshot",
        {"support": support.tolist(), "support_labels": support_y.tolist(), "query": query.tolist(), "lam": 1.0},
    )
    labels = np.array(out.model_dump()["labels"])
    assert labels.shape == (len(query),)
    assert (labels == query_y).mean() > 0.8


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"query": [[1.0, float("nan")], [0.0, 0.0]]}, "NaN"),
        ({"query": [[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]}, "columns"),
        ({"support_labels": [0, 2]}, "every class"),
        ({"support_labels": [0]}, "entries"),
        ({"query": []}, "2-D"),
    ],
)
def test_bad_input_is_one_clear_error(change: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"support": [[0.0, 0.0], [1.0, 1.0]], "support_labels": [0, 1], "query": [[0.1, 0.0]] * 5}
    base.update(change)
    with pytest.raises(ToolError, match=message):
        transductive_fewshot(TransductiveInput.model_validate(base))
