"""laso: set targets follow set algebra, trained networks realise the operations (union(x, x) keeps x's labels), and
bad input is refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from malot_fewshot.laso import LasoInput, laso, set_targets, train_laso

from malot.errors import ToolError
from malot.tools import ToolRegistry


def _data(seed: int, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (rng.uniform(size=(n, 4)) < 0.4).astype(np.float64)
    features = labels @ (rng.normal(size=(4, 8)) * 2) + 0.2 * rng.normal(size=(n, 8))
    return features, labels


def test_set_targets_follow_set_algebra() -> None:
    la = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    lb = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    assert set_targets(la, lb, "intersection").tolist() == [[1, 0, 0, 0]]
    assert set_targets(la, lb, "union").tolist() == [[1, 1, 1, 0]]
    assert set_targets(la, lb, "subtraction").tolist() == [[0, 1, 0, 0]]
    assert torch.equal(set_targets(la, la, "union"), la)


@pytest.mark.slow
def test_trained_operations_realise_the_label_set_algebra() -> None:
    x, y = _data(0)
    model = train_laso(x, y, hidden=64, classifier_steps=200, steps=250, seed=0)
    union_self = model.label_scores(model.apply("union", x, x)) > 0.5
    assert (union_self == (y > 0.5)).all(1).mean() > 0.8  # union(x, x) keeps x's label set
    rng = np.random.default_rng(1)
    i, j = rng.integers(len(x), size=(2, 200))
    for op in ("intersection", "union", "subtraction"):
        target = set_targets(torch.as_tensor(y[i]), torch.as_tensor(y[j]), op).numpy() > 0.5
        predicted = model.label_scores(model.apply(op, x[i], x[j])) > 0.5
        assert (predicted == target).mean() > 0.9, op


def test_tool_through_the_registry() -> None:
    x, y = _data(2, n=60)
    registry = ToolRegistry()
    registry.register(laso)
    out = registry.run_sync(
        "laso",
        {
            "features": x.tolist(),
            "labels": y.astype(int).tolist(),
            "pairs": [[0, 1], [2, 3]],
            "op": "union",
            "steps": 5,
        },
        isolation="inline",
    ).model_dump()
    assert np.array(out["features"]).shape == (2, 8)
    assert np.array(out["predicted_labels"]).shape == (2, 4)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"labels": [[0, 1], [2, 0]]}, "multi-hot"),
        ({"labels": [[0, 1]]}, "label rows"),
        ({"pairs": [[0, 5]]}, "outside"),
        ({"features": [[0.0, float("nan")], [1.0, 1.0]]}, "NaN"),
    ],
)
def test_bad_input_is_one_clear_error(change: dict[str, object], message: str) -> None:
    base: dict[str, object] = {
        "features": [[0.0, 1.0], [1.0, 0.0]],
        "labels": [[0, 1], [1, 0]],
        "pairs": [[0, 1]],
        "op": "intersection",
        "steps": 1,
    }
    base.update(change)
    with pytest.raises(ToolError, match=message):
        laso(LasoInput.model_validate(base))
