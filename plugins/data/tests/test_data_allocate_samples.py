"""Lasso sample allocation: a planted support is recovered and the budget is met exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from malot_data.allocate_samples import allocate_budget, task_relevance

from malot.errors import ToolError
from malot.tools import tool_of
from malot.tools.registry import ToolRegistry


def _planted(seed: int, n: int = 60, tasks: int = 8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    preds = rng.normal(size=(n, tasks))
    target = 2.0 * preds[:, 1] - 1.5 * preds[:, 3] + 0.05 * rng.normal(size=n)
    return preds, target


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_target_built_from_tasks_1_and_3_recovers_support_1_3(seed: int) -> None:
    preds, target = _planted(seed)
    nu, alpha = task_relevance(preds, target)  # LassoCV picks alpha
    assert alpha > 0
    assert list(np.flatnonzero(np.abs(nu) > 0.05)) == [1, 3]
    nu_fixed, _ = task_relevance(preds, target, alpha=0.1)
    assert list(np.flatnonzero(nu_fixed)) == [1, 3]
    allocation = allocate_budget(nu_fixed, 101)
    assert sum(allocation) == 101 and [i for i, a in enumerate(allocation) if a] == [1, 3]
    assert allocation[1] > allocation[3]  # |ν1| > |ν3|


@pytest.mark.parametrize("budget", [1, 9, 100, 997])
@pytest.mark.parametrize("weighting", ["l1", "l2"])
def test_budget_is_exact(budget: int, weighting: str) -> None:
    nu = np.array([0.3, -1.1, 0.0, 0.25, 2.0])
    allocation = allocate_budget(nu, budget, weighting=weighting)  # type: ignore[arg-type]
    assert sum(allocation) == budget and allocation[2] == 0
    floored = allocate_budget(nu, budget + 10, weighting=weighting, floor=2)  # type: ignore[arg-type]
    assert sum(floored) == budget + 10 and min(floored) >= 2


def test_l2_weighting_is_proportional_to_the_squares() -> None:
    assert allocate_budget([1.0, 2.0, 0.0], 50, weighting="l2") == [10, 40, 0]
    assert allocate_budget([1.0, -3.0], 40) == [10, 30]


def test_bad_input() -> None:
    with pytest.raises(ToolError, match="rows"):
        task_relevance(np.zeros((5, 3)), np.zeros(4))
    with pytest.raises(ToolError, match="NaN"):
        task_relevance(np.zeros((5, 3)), np.array([0, 1, np.nan, 0, 0]))
    with pytest.raises(ToolError, match="floor"):
        allocate_budget([1.0, 1.0], 3, floor=2)


def test_tool_from_features_and_heads(tmp_path: Path) -> None:
    import malot_data.allocate_samples as module

    rng = np.random.default_rng(5)
    feats, heads = rng.normal(size=(50, 6)), rng.normal(size=(7, 6))
    target = feats @ (heads[1] + heads[3])
    np.savez(tmp_path / "a.npz", x=feats, w=heads, y=target)
    registry = ToolRegistry()
    t = tool_of(module.allocate_samples)
    assert t is not None
    registry.register(t)
    out = registry.run_sync(
        "allocate_samples",
        {
            "target": f"{tmp_path}/a.npz:y",
            "target_features": f"{tmp_path}/a.npz:x",
            "source_heads": f"{tmp_path}/a.npz:w",
            "budget": 64,
            "alpha": 0.05,
        },
    ).model_dump()
    assert out["support"] == [1, 3] and sum(out["allocation"]) == 64
    with pytest.raises(ToolError, match="source_predictions"):
        registry.run_sync("allocate_samples", {"target": f"{tmp_path}/a.npz:y", "budget": 5})
