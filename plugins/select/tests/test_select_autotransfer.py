"""AutoTransfer: Fisher task embeddings, an identical task returns its own designs, tool errors."""

from __future__ import annotations

import numpy as np
import pytest
from malot_select.autotransfer import design_prior, design_prior_tool, fisher_task_embedding, learn_task_projection

from malot.errors import ToolError
from malot.tools import ToolRegistry


def _task(seed: int, kind: str, n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    y = (x[:, 0] > 0).astype(int) if kind == "linear" else ((x[:, 0] * x[:, 1]) > 0).astype(int)
    return x, y


def test_embedding_is_deterministic_normalised_and_tells_tasks_apart() -> None:
    x, y = _task(0, "linear")
    e1 = fisher_task_embedding(x, y, steps=20)
    e2 = fisher_task_embedding(x, y, steps=20)
    assert np.array_equal(e1, e2)
    # one block per anchor: weight and bias of each linear layer (2, 3 and 3 layers)
    assert np.allclose([np.linalg.norm(part) for part in np.split(e1, [4, 10])], 1.0)
    other = fisher_task_embedding(*_task(1, "xor"), steps=20)
    assert not np.allclose(e1, other)


def test_identical_task_returns_its_own_designs_in_order() -> None:
    bank = [
        ("a", np.array([1.0, 0.0, 0.0]), {"wide": 0.9, "deep": 0.5, "linear": 0.2}),
        ("b", np.array([0.0, 1.0, 0.0]), {"wide": 0.1, "deep": 0.8, "linear": 0.6}),
        ("c", np.array([0.0, 0.6, 0.8]), {"wide": 0.3, "deep": 0.2, "linear": 0.9}),
    ]
    for name, emb, designs in bank:
        prior, neighbours = design_prior(emb, bank, k=1)
        assert neighbours[0] == (name, pytest.approx(1.0))
        assert sorted(prior, key=lambda d: -prior[d]) == sorted(designs, key=lambda d: -designs[d])
    prior, neighbours = design_prior(np.array([0.0, 0.8, 0.6]), bank, k=2, temperature=0.05)
    assert [n for n, _ in neighbours] == ["c", "b"] or [n for n, _ in neighbours] == ["b", "c"]
    assert sum(prior.values()) > 0


def test_learned_projection_brings_tasks_with_alike_design_rankings_together() -> None:
    rng = np.random.default_rng(5)
    # two groups of tasks whose designs rank oppositely; the group shows only in feature 0, drowned by features 1-5
    features, perfs = [], []
    for i in range(8):
        group = i % 2
        f = np.concatenate([[0.3 if group else -0.3], rng.normal(size=5)])
        features.append(f)
        perfs.append({"a": 0.9, "b": 0.5, "c": 0.1} if group else {"a": 0.1, "b": 0.5, "c": 0.9})

    def same_group_nearest(w: np.ndarray) -> float:
        z = [w @ f / np.linalg.norm(w @ f) for f in features]
        hits = []
        for a in range(8):
            sims = [(z[a] @ z[b], b) for b in range(8) if b != a]
            hits.append(max(sims)[1] % 2 == a % 2)
        return float(np.mean(hits))

    w = learn_task_projection(features, perfs, steps=300)
    assert same_group_nearest(w) > same_group_nearest(np.eye(6))
    assert same_group_nearest(w) == 1.0
    assert np.array_equal(learn_task_projection(features[:2], perfs[:2]), np.eye(6))  # too few tasks: identity


def test_tool_through_the_registry_finds_the_same_task_in_the_bank() -> None:
    x, y = _task(2, "xor", 40)
    xl, yl = _task(3, "linear", 40)
    registry = ToolRegistry()
    registry.register(design_prior_tool)
    out = registry.run_sync(
        "design_prior",
        {
            "features": x.tolist(),
            "labels": y.tolist(),
            "steps": 10,
            "k": 1,
            "bank": [
                {"name": "lin", "features": xl.tolist(), "labels": yl.tolist(), "designs": {"linear": 0.9, "mlp": 0.7}},
                {"name": "same", "features": x.tolist(), "labels": y.tolist(), "designs": {"linear": 0.5, "mlp": 0.95}},
            ],
        },
        isolation="inline",
    ).model_dump()
    assert out["neighbours"][0][0] == "same" and out["neighbours"][0][1] == pytest.approx(1.0)
    assert out["ranking"] == ["mlp", "linear"]


@pytest.mark.parametrize(
    ("bank", "message"),
    [
        ([{"name": "x", "designs": {"a": 1.0}}], "neither an embedding nor data"),
        ([{"name": "x", "designs": {"a": 1.0}, "embedding": [1.0, 2.0]}], "differ in size"),
        ([], "at least 1"),
    ],
)
def test_tool_rejects_bad_input(bank: list[dict[str, object]], message: str) -> None:
    x, y = _task(4, "linear", 20)
    registry = ToolRegistry()
    registry.register(design_prior_tool)
    with pytest.raises(ToolError, match=message):
        registry.run_sync(
            "design_prior", {"features": x.tolist(), "labels": y.tolist(), "bank": bank, "steps": 2}, isolation="inline"
        )
