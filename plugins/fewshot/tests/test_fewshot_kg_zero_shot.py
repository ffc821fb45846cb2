"""kg_zero_shot: twins in the class graph get identical weights, node relabelling permutes the output, the GCN fits
the seen classifiers, and bad input is refused."""

from __future__ import annotations

import numpy as np
import pytest
from malot_fewshot.kg_zero_shot import KgZeroShotInput, kg_zero_shot, train_gcnz

from malot.errors import ToolError
from malot.tools import ToolRegistry


def _graph(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(8, 5))
    edges = np.array([[0, 1], [1, 2], [2, 3], [3, 4], [4, 5], [5, 6], [6, 7], [7, 0], [0, 4]])
    seen = np.arange(6)
    weights = rng.normal(size=(6, 3))
    return emb, edges, seen, weights


def test_a_twin_of_a_seen_class_gets_its_weights_exactly() -> None:
    emb, edges, seen, weights = _graph()
    emb[7] = emb[2]  # unseen class 7: same embedding as seen class 2 ...
    edges = np.array([e for e in edges.tolist() if 7 not in e] + [[7, 1], [7, 3], [7, 2]])  # ... same closed nbhd
    result = train_gcnz(emb, edges, seen, weights, steps=50, dropout=0.0)
    np.testing.assert_allclose(result.weights[7], result.weights[2], atol=1e-6)


def test_relabelling_the_nodes_permutes_the_weights() -> None:
    emb, edges, seen, weights = _graph(1)
    perm = np.random.default_rng(2).permutation(8)  # new index of old node i is perm[i]
    inverse = np.argsort(perm)
    base = train_gcnz(emb, edges, seen, weights, steps=30, dropout=0.0)
    moved = train_gcnz(emb[inverse], perm[edges], perm[seen], weights, steps=30, dropout=0.0)
    np.testing.assert_allclose(moved.weights[perm], base.weights, atol=1e-5)


def test_training_fits_the_seen_classifiers() -> None:
    emb, edges, seen, weights = _graph(3)
    result = train_gcnz(emb, edges, seen, weights, steps=300, lr=1e-2, dropout=0.0)
    target = weights / np.linalg.norm(weights, axis=1, keepdims=True)
    assert result.losses[-1] < 0.1 * result.losses[0]
    assert (np.sum(result.weights[seen] * target, 1) > 0.9).all()


def test_tool_through_the_registry_classifies_among_unseen_classes() -> None:
    emb, edges, seen, weights = _graph(4)
    registry = ToolRegistry()
    registry.register(kg_zero_shot)
    out = registry.run_sync(
        "kg_zero_shot",
        {
            "class_embeddings": emb.tolist(),
            "edges": edges.tolist(),
            "seen_classes": seen.tolist(),
            "seen_weights": weights.tolist(),
            "features": [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
            "steps": 20,
        },
        isolation="inline",
    ).model_dump()
    assert np.array(out["class_weights"]).shape == (8, 3)
    assert set(out["predictions"]) <= {6, 7}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"edges": [[0, 9]]}, "outside"),
        ({"seen_classes": [0, 0]}, "twice"),
        ({"seen_weights": [[1.0, 0.0]]}, "rows"),
        ({"seen_classes": [0, 5]}, "only 3 classes"),
        ({"class_embeddings": [[0.0], [float("nan")], [1.0]]}, "NaN"),
        ({"features": [[1.0, 0.0, 0.0]]}, "columns"),
    ],
)
def test_bad_input_is_one_clear_error(change: dict[str, object], message: str) -> None:
    base: dict[str, object] = {
        "class_embeddings": [[0.0], [1.0], [2.0]],
        "edges": [[0, 1], [1, 2]],
        "seen_classes": [0, 1],
        "seen_weights": [[1.0, 0.0], [0.0, 1.0]],
        "steps": 2,
    }
    base.update(change)
    with pytest.raises(ToolError, match=message):
        kg_zero_shot(KgZeroShotInput.model_validate(base))
