"""pretrain_then_erm: 'none' is plain logistic regression, permuting mixture components changes nothing, and MLE
pre-training on plentiful unlabelled data helps with few labels; bad input is refused."""

from __future__ import annotations

import numpy as np
import pytest
from malot_fewshot.pretrain_erm import PretrainErmInput, pretrain_then_erm, pretrain_then_erm_tool

from malot.errors import ToolError
from malot.tools import ToolRegistry


def _mixture(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    means = np.array([[3.0, 0, 0], [-3.0, 0, 0], [0, 3.0, 0], [0, -3.0, 0]])
    z = rng.integers(4, size=n)
    return means[z] + rng.normal(size=(n, 3)) * 0.8, (z // 2).astype(np.int64)


def test_no_latent_model_is_plain_logistic_regression() -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x, y = _mixture(rng, 60)
    ours = pretrain_then_erm(x, x, y, latent_model="none", c=0.5)
    plain = LogisticRegression(C=0.5, max_iter=5000).fit(x, y)
    np.testing.assert_allclose(ours.predict_proba(x), plain.predict_proba(x), rtol=1e-12)


def test_relabelling_mixture_components_changes_no_prediction() -> None:
    rng = np.random.default_rng(1)
    unlabelled, _ = _mixture(rng, 800)
    x, y = _mixture(rng, 20)
    model = pretrain_then_erm(unlabelled, x, y, latent_model="gmm", n_latent=4)
    perm = np.array([2, 0, 3, 1])
    before = model.predict_proba(x)
    gmm = model.latent
    gmm.weights_, gmm.means_ = gmm.weights_[perm], gmm.means_[perm]
    gmm.covariances_, gmm.precisions_cholesky_ = gmm.covariances_[perm], gmm.precisions_cholesky_[perm]
    gmm.precisions_ = gmm.precisions_[perm]
    model.head.coef_ = model.head.coef_[:, perm]
    after = model.predict_proba(x)
    np.testing.assert_allclose(after, before, rtol=1e-9)


def test_pretraining_beats_supervised_with_few_labels() -> None:
    rng = np.random.default_rng(2)
    unlabelled, _ = _mixture(rng, 2000)
    x, y = _mixture(rng, 12)
    while len(set(y.tolist())) < 2:
        x, y = _mixture(rng, 12)
    x_test, y_test = _mixture(rng, 2000)
    pre = (pretrain_then_erm(unlabelled, x, y, n_latent=4, c=10.0).predict(x_test) == y_test).mean()
    sup = (pretrain_then_erm(unlabelled, x, y, latent_model="none").predict(x_test) == y_test).mean()
    assert pre > 0.95
    assert sup < 0.8  # XOR-like labels: no linear rule on x works


def test_tool_through_the_registry() -> None:
    rng = np.random.default_rng(3)
    unlabelled, _ = _mixture(rng, 400)
    x, y = _mixture(rng, 30)
    registry = ToolRegistry()
    registry.register(pretrain_then_erm_tool)
    out = registry.run_sync(
        "pretrain_then_erm",
        {"unlabelled": unlabelled.tolist(), "x": x.tolist(), "y": y.tolist(), "predict": [[3.0, 0, 0], [0, 3.0, 0]]},
    ).model_dump()
    assert out["unlabelled_log_likelihood"] is not None
    assert out["predictions"] == [int(y[np.argmax(x[:, 0])]), int(y[np.argmax(x[:, 1])])]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"y": [0, 0]}, "two classes"),
        ({"x": [[1.0], [2.0]]}, "columns"),
        ({"n_latent": 6}, "n_latent"),
        ({"latent_model": "factor", "n_latent": 3}, "more factors"),
        ({"unlabelled": [[0.0, float("nan")]] * 6}, "NaN"),
    ],
)
def test_bad_input_is_one_clear_error(change: dict[str, object], message: str) -> None:
    base: dict[str, object] = {
        "unlabelled": [[0.0, 0.0], [1.0, 1.0], [2.0, 0.0], [0.0, 2.0], [1.0, 0.0], [3.0, 3.0]],
        "x": [[0.0, 0.0], [1.0, 1.0]],
        "y": [0, 1],
        "n_latent": 2,
    }
    base.update(change)
    with pytest.raises(ToolError, match=message):
        pretrain_then_erm_tool(PretrainErmInput.model_validate(base))
