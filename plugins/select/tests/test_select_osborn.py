"""OSBORN: OT terms, diminishing returns, duplicates add nothing, greedy selection, tool errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from malot_select.osborn import _utilities, greedy_select, osborn_terms, osborn_value, select_ensemble_tool

from malot.errors import ToolError
from malot.tools import ToolRegistry


def _candidate(rng: np.random.Generator, shift: float, n: int = 30) -> dict[str, object]:
    ys = rng.integers(0, 2, n)
    xs = rng.normal(size=(n, 3)) + 2.0 * np.eye(3)[ys]
    xt = rng.normal(size=(n, 3)) + shift
    return {"source_features": xs.tolist(), "source_labels": ys.tolist(), "target_features": xt.tolist()}


def test_terms_are_the_ot_distance_and_the_ot_conditional_entropy() -> None:
    import ot

    rng = np.random.default_rng(0)
    xs, xt = rng.normal(size=(12, 2)), rng.normal(size=(12, 2)) + 1.0
    ys, yt = rng.integers(0, 2, 12), rng.integers(0, 3, 12)
    terms = osborn_terms(xs, ys, xt, yt)
    joint = np.vstack([xs, xt])
    zs, zt = (xs - joint.mean(0)) / joint.std(0), (xt - joint.mean(0)) / joint.std(0)
    cost = ot.dist(zs, zt) / 2
    assert terms.domain_distance == pytest.approx(ot.emd2(np.full(12, 1 / 12), np.full(12, 1 / 12), cost))
    plan = ot.emd(np.full(12, 1 / 12), np.full(12, 1 / 12), cost)
    p = np.zeros((2, 3))
    for i, j in itertools.product(range(12), range(12)):
        p[ys[i], yt[j]] += plan[i, j]
    h = -sum(p[a, b] * np.log(p[a, b] / p[a].sum()) for a in range(2) for b in range(3) if p[a, b] > 0)
    assert terms.conditional_entropy == pytest.approx(h, abs=1e-10)
    assert np.allclose(terms.label_dist.sum(axis=0), 1.0)


def test_gains_diminish_and_a_duplicate_adds_exactly_nothing() -> None:
    rng = np.random.default_rng(1)
    utilities = rng.normal(size=(6, 40))
    utilities = np.vstack([utilities, utilities[2]])  # model 6 duplicates model 2
    for small in ([], [0], [0, 3]):
        large = [*small, 1, 4]
        for m in (2, 5):
            gain_small = osborn_value(utilities, [*small, m]) - osborn_value(utilities, small)
            gain_large = osborn_value(utilities, [*large, m]) - osborn_value(utilities, large)
            assert gain_small >= gain_large - 1e-12
    for chosen in ([2], [0, 2], [2, 4, 5]):
        assert osborn_value(utilities, [*chosen, 6]) == osborn_value(utilities, chosen)
    picked, gains = greedy_select(utilities, 7)
    assert gains == sorted(gains, reverse=True)
    assert picked.index(6) > picked.index(2) and gains[picked.index(6)] == 0.0


def test_greedy_skips_a_duplicate_of_the_best_model_for_a_complementary_one() -> None:
    rng = np.random.default_rng(2)
    yt = rng.integers(0, 2, 40)
    target = rng.normal(size=(40, 3))
    candidates = {"best": _candidate(rng, 0.0), "far": _candidate(rng, 4.0)}
    candidates["copy_of_best"] = dict(candidates["best"])
    terms = []
    for c in candidates.values():
        xs, ys = np.asarray(c["source_features"]), np.asarray(c["source_labels"])
        terms.append(osborn_terms(xs, ys, target, yt))
    utilities = _utilities(terms, (1.0, 1.0, 1.0))
    chosen, gains = greedy_select(utilities, 2)
    assert chosen[0] in (0, 2) and chosen[1] == 1 and gains[1] >= 0


def test_select_ensemble_tool_through_the_registry() -> None:
    rng = np.random.default_rng(3)
    yt = rng.integers(0, 2, 30).tolist()
    near, far = _candidate(rng, 0.0), _candidate(rng, 5.0)
    registry = ToolRegistry()
    registry.register(select_ensemble_tool)
    out = registry.run_sync(
        "select_ensemble",
        {"candidates": [{"name": "far", **far}, {"name": "near", **near}], "target_labels": yt, "k": 1},
        isolation="inline",
    ).model_dump()
    assert out["selected"] == ["near"]
    by_name = {c["name"]: c for c in out["candidates"]}
    assert by_name["near"]["domain_distance"] < by_name["far"]["domain_distance"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"k": 3}, "exceeds the 2 candidates"),
        ({"names": ["a", "a"]}, "unique"),
        ({"target_labels": [0, 1]}, "2 labels but there are 30"),
        ({"dims": 2}, "source features have 3 dims"),
        ({"nan": True}, "NaN"),
    ],
)
def test_select_ensemble_rejects_bad_input(change: dict[str, object], message: str) -> None:
    rng = np.random.default_rng(4)
    a, b = _candidate(rng, 0.0), _candidate(rng, 1.0)
    names = change.get("names", ["a", "b"])
    if change.get("dims"):
        b["target_features"] = np.asarray(b["target_features"])[:, :2].tolist()
    if change.get("nan"):
        bad = np.asarray(a["source_features"])
        bad[0, 0] = np.nan
        a["source_features"] = bad.tolist()
    args = {
        "candidates": [{"name": names[0], **a}, {"name": names[1], **b}],  # type: ignore[index]
        "target_labels": change.get("target_labels", rng.integers(0, 2, 30).tolist()),
        "k": change.get("k", 1),
    }
    registry = ToolRegistry()
    registry.register(select_ensemble_tool)
    with pytest.raises(ToolError, match=message):
        registry.run_sync("select_ensemble", args, isolation="inline")
