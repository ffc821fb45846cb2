"""DP4TL source pruning: the target's own classes are kept, the kept fraction is exact, bad input is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from malot_data.prune_source import feature_mapping_groups, label_mapping_hits, prune_by_hits

from malot.errors import ToolError
from malot.tools.registry import ToolRegistry


def _source(classes: int = 5, per_class: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, 6)) * 6
    y = np.repeat(np.arange(classes), per_class)
    return centres[y] + rng.normal(size=(y.size, 6)), y, centres


def _logits(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """A nearest-centre 'source model': logits are negative squared distances to the class centres."""
    return -((x[:, None, :] - centres[None]) ** 2).sum(-1)


def test_label_mapping_keeps_exactly_the_target_classes() -> None:
    _x, y, centres = _source()
    rng = np.random.default_rng(1)
    target = centres[rng.integers(0, 2, 30)] + rng.normal(size=(30, 6))  # target drawn from classes {0, 1}
    hits = label_mapping_hits(_logits(target, centres), 5)
    result = prune_by_hits(y, hits, keep=0.4)
    assert sorted(result.kept_groups) == [0, 1] and result.partial_group is None
    assert set(y[result.indices]) == {0, 1} and len(result.indices) == 40


@pytest.mark.parametrize("keep", [0.05, 0.33, 0.5, 0.77, 1.0])
def test_kept_fraction_is_exact(keep: float) -> None:
    _, y, _ = _source()
    hits = np.array([7, 0, 3, 3, 1])
    result = prune_by_hits(y, hits, keep=keep)
    assert len(result.indices) == round(keep * y.size) and len(set(result.indices)) == len(result.indices)
    assert result.kept_groups == [0, 2, 3, 4, 1][: len(result.kept_groups)]  # most hits first, ties by index


def test_feature_mapping_keeps_the_clusters_the_target_falls_into() -> None:
    x, y, centres = _source(seed=2)
    rng = np.random.default_rng(3)
    target = centres[[3] * 15] + rng.normal(size=(15, 6))
    groups, hits = feature_mapping_groups(x, target, clusters=5, seed=0)
    result = prune_by_hits(groups, hits, keep=0.2)
    assert set(y[result.indices]) == {3} and len(result.indices) == 20


def test_bad_input_is_refused_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="columns"):
        label_mapping_hits(np.zeros((4, 3)), 5)
    with pytest.raises(ToolError, match="NaN"):
        feature_mapping_groups(np.full((4, 2), np.nan), np.zeros((2, 2)), 2)
    with pytest.raises(ToolError, match="dimensions"):
        feature_mapping_groups(np.zeros((4, 2)), np.zeros((2, 3)), 2)
    with pytest.raises(ToolError, match="keep"):
        prune_by_hits(np.zeros(10, np.int64), np.array([1]), keep=0.01)


def test_tool_runs_through_the_registry(tmp_path: Path) -> None:
    import malot_data.prune_source as module

    from malot.tools import tool_of

    _x, y, centres = _source()
    target = centres[[4] * 10] + np.random.default_rng(0).normal(size=(10, 6))
    np.save(tmp_path / "y.npy", y)
    np.savez(tmp_path / "t.npz", logits=_logits(target, centres), other=np.zeros(2))
    registry = ToolRegistry()
    t = tool_of(module.prune_source)
    assert t is not None
    registry.register(t)
    out = registry.run_sync(
        "prune_source",
        {
            "keep": 0.2,
            "source_labels": str(tmp_path / "y.npy"),
            "target_logits": str(tmp_path / "t.npz:logits"),
            "out": str(tmp_path / "kept.npz"),
        },
    )
    data = out.model_dump()
    assert data["kept"] == 20 and data["kept_groups"] == [4]
    assert np.load(tmp_path / "kept.npz")["indices"].tolist() == data["indices"]
    with pytest.raises(ToolError, match="holds 2 arrays"):
        registry.run_sync(
            "prune_source",
            {"keep": 0.2, "source_labels": str(tmp_path / "y.npy"), "target_logits": str(tmp_path / "t.npz")},
        )
    with pytest.raises(ToolError, match="needs target_logits"):
        registry.run_sync("prune_source", {"keep": 0.2, "source_labels": str(tmp_path / "y.npy")})
