"""llp_bp: count-factor messages match brute force; no edges gives the bag proportion; proportion 1 gives all ones."""

from __future__ import annotations

from itertools import product

import numpy as np
import pytest
from malot_fewshot.llp_bp import LlpBpInput, bp_marginals, count_messages, llp_bp, llp_bp_tool

from malot.errors import ToolError
from malot.tools import ToolRegistry


def test_count_messages_equal_brute_force_enumeration() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(size=5)
    potential = rng.uniform(size=6)
    brute = np.zeros((5, 2))
    for ys in product([0, 1], repeat=5):
        for i in range(5):
            prob = np.prod([p[j] if ys[j] else 1 - p[j] for j in range(5) if j != i])
            brute[i, ys[i]] += prob * potential[sum(ys)]
    np.testing.assert_allclose(count_messages(p, potential), brute, rtol=1e-12)


def test_no_edges_gives_the_bag_proportion_and_proportion_one_gives_ones() -> None:
    bags = np.repeat(np.arange(4), [4, 5, 8, 10])
    props = np.array([0.25, 0.6, 1.0, 0.0])
    marginals = bp_marginals(bags, props)
    np.testing.assert_allclose(marginals, props[bags], atol=1e-12)
    assert (marginals[bags == 2] == 1.0).all()


def test_bp_on_a_tree_equals_exact_marginals() -> None:
    # one soft bag factor over 4 variables with unaries (the edge has zero coupling): a tree, so BP is exact
    rng = np.random.default_rng(1)
    bags = np.zeros(4, dtype=np.int64)
    edges = np.array([[0, 1]])
    unary = rng.normal(size=4)
    got = bp_marginals(bags, np.array([0.5]), edges=edges, unary=unary, coupling=0.0, bag_strength=0.7, iterations=200)
    weights = {}
    for ys in product([0, 1], repeat=4):
        c = sum(ys)
        weights[ys] = np.exp(unary @ np.array(ys) - 0.7 * (c - 2.0) ** 2)
    total = sum(weights.values())
    exact = [sum(w for ys, w in weights.items() if ys[i]) / total for i in range(4)]
    np.testing.assert_allclose(got, exact, rtol=1e-6)


def test_similar_neighbours_pull_labels_together() -> None:
    # two bags with proportion 1/2; instance 0 of bag 0 is tied to a neighbour in bag 1 with a strong positive unary
    bags = np.array([0, 0, 1, 1])
    unary = np.array([0.0, 0.0, 3.0, -3.0])
    edges = np.array([[0, 2]])
    got = bp_marginals(bags, np.array([0.5, 0.5]), edges=edges, unary=unary, coupling=2.0)
    assert got[0] > 0.7 > 0.3 > got[1]


@pytest.mark.slow
def test_pipeline_learns_a_classifier_from_proportions() -> None:
    rng = np.random.default_rng(0)
    centres = np.array([[2.0, 0.0], [-2.0, 0.0]])
    y = rng.integers(2, size=256)
    x = centres[y] + rng.normal(size=(256, 2)) * 0.7
    bags = np.arange(256) % 16
    props = np.bincount(bags, weights=y) / np.bincount(bags)
    result = llp_bp(x, bags, props, rounds=1, steps=100)
    assert ((result.train_scores > 0.5) == y).mean() > 0.9


def test_tool_through_the_registry() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(2, size=64)
    x = np.stack([y * 3.0 - 1.5, np.zeros(64)], 1) + rng.normal(size=(64, 2)) * 0.5
    bags = np.arange(64) % 8
    props = np.bincount(bags, weights=y) / np.bincount(bags)
    registry = ToolRegistry()
    registry.register(llp_bp_tool)
    out = registry.run_sync(
        "llp_bp",
        {"x": x.tolist(), "bags": bags.tolist(), "proportions": props.tolist(), "predict": [[2.0, 0.0]], "steps": 60},
        isolation="inline",
    ).model_dump()
    assert len(out["pseudo_labels"]) == 64
    assert out["predictions"][0] > 0.5


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"proportions": [0.5, 1.5]}, r"\[0, 1\]"),
        ({"proportions": [0.5]}, "entries"),
        ({"bags": [0, 0, 2, 2], "proportions": [0.5, 0.5, 0.5]}, "non-empty"),
        ({"knn": 4}, "knn"),
        ({"x": [[0.0], [1.0], [float("nan")], [2.0]]}, "NaN"),
    ],
)
def test_bad_input_is_one_clear_error(change: dict[str, object], message: str) -> None:
    base: dict[str, object] = {
        "x": [[0.0], [1.0], [2.0], [3.0]],
        "bags": [0, 0, 1, 1],
        "proportions": [0.5, 0.5],
        "knn": 1,
    }
    base.update(change)
    with pytest.raises(ToolError, match=message):
        llp_bp_tool(LlpBpInput.model_validate(base))
