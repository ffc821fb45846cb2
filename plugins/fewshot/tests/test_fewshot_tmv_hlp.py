"""tmv_hlp: the hypergraph walk is row-stochastic, two-view MCCA matches scikit-learn's CCA, aligned views reduce to
nearest-prototype labels; bad input is refused."""

from __future__ import annotations

import numpy as np
import pytest
from malot_fewshot.tmv_hlp import TmvHlpInput, hypergraph_walk, multiview_cca, tmv_hlp, tmv_hlp_predict

from malot.errors import ToolError
from malot.tools import ToolRegistry


def _views(seed: int, n_per: int = 15) -> tuple[list[np.ndarray], list[np.ndarray | None], np.ndarray]:
    rng = np.random.default_rng(seed)
    protos = rng.normal(size=(4, 6)) * 3
    y = np.repeat(np.arange(4), n_per)
    semantic = protos[y] + 0.3 * rng.normal(size=(len(y), 6))
    visual = semantic @ rng.normal(size=(6, 8)) + 0.3 * rng.normal(size=(len(y), 8))
    return [visual, semantic], [None, protos], y


def test_walk_is_row_stochastic_and_non_negative() -> None:
    rng = np.random.default_rng(0)
    walk = hypergraph_walk([rng.normal(size=(30, 4)), rng.normal(size=(30, 3)), rng.normal(size=(30, 5))], k=4)
    assert (walk >= 0).all()
    np.testing.assert_allclose(walk.sum(1), 1.0, atol=1e-12)
    views, protos, _ = _views(1)
    np.testing.assert_allclose(tmv_hlp_predict(views, protos, dim=4).walk.sum(1), 1.0, atol=1e-12)


def test_two_view_mcca_finds_scikit_learns_first_canonical_correlation() -> None:
    from sklearn.cross_decomposition import CCA

    rng = np.random.default_rng(2)
    z = rng.normal(size=(500, 2))
    a = z @ rng.normal(size=(2, 5)) + 0.5 * rng.normal(size=(500, 5))
    b = z @ rng.normal(size=(2, 4)) + 0.5 * rng.normal(size=(500, 4))
    cca = multiview_cca([a, b], 1, reg=0.0)
    ours = np.corrcoef(((a - cca.means[0]) @ cca.projections[0])[:, 0], ((b - cca.means[1]) @ cca.projections[1])[:, 0])
    u, v = CCA(n_components=1, max_iter=5000, tol=1e-12).fit(a, b).transform(a, b)
    theirs = np.corrcoef(u[:, 0], v[:, 0])[0, 1]
    assert abs(ours[0, 1]) == pytest.approx(abs(theirs), abs=1e-6)
    assert cca.values[0] == pytest.approx(1 + abs(theirs), abs=1e-6)  # SUMCOR eigenvalue = 1 + ρ for two views


def test_aligned_views_give_the_nearest_prototype_labels() -> None:
    views, protos, y = _views(3)
    result = tmv_hlp_predict(views, protos, dim=4, k=3)
    assert (result.labels == y).all()


def test_tool_through_the_registry() -> None:
    views, protos, y = _views(4, n_per=8)
    registry = ToolRegistry()
    registry.register(tmv_hlp)
    out = registry.run_sync(
        "tmv_hlp",
        {"views": [v.tolist() for v in views], "prototypes": [None, protos[1].tolist()], "dim": 4, "k": 3},
    ).model_dump()
    assert out["labels"] == y.tolist()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"prototypes": [None, None]}, "no view has class prototypes"),
        ({"prototypes": [None]}, "prototype entries"),
        ({"views": [[[0.0, 1.0]] * 4, [[0.0]] * 3]}, "row counts differ"),
        ({"prototypes": [None, [[0.0, 1.0], [1.0, 0.0]]]}, "columns"),
        ({"k": 50}, "lower k"),
    ],
)
def test_bad_input_is_one_clear_error(change: dict[str, object], message: str) -> None:
    base: dict[str, object] = {
        "views": [[[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [0.2, 0.1]], [[0.0], [1.0], [0.4], [0.9]]],
        "prototypes": [None, [[0.0], [1.0]]],
        "k": 2,
    }
    base.update(change)
    with pytest.raises(ToolError, match=message):
        tmv_hlp(TmvHlpInput.model_validate(base))
