"""Open-world loop: new classes are detected (AUROC > 0.9 on separated blobs), the budget holds, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from malot_continual.core.data import LabelledData
from malot_continual.core.synthetic import blobs
from malot_continual.open_world import novelty_scores, open_world_loop, open_world_tool, rejection_threshold

from malot.errors import ToolError
from malot.tools import ToolRegistry


def _world() -> tuple[LabelledData, list[LabelledData], LabelledData]:
    centers = 8.0 * torch.eye(6)[:, :6]
    initial = blobs(centers[:2], 40, noise=0.5, seed=0, labels=[10, 20])  # arbitrary original labels
    stream = [
        blobs(centers[: 3 + i], 12, noise=0.5, seed=1 + i, labels=[10, 20, 30, 40, 50, 60][: 3 + i]) for i in range(3)
    ]
    test = blobs(centers, 20, noise=0.5, seed=9, labels=[10, 20, 30, 40, 50, 60])
    return initial, stream, test


def test_new_classes_are_detected_and_the_budget_holds() -> None:
    initial, stream, test = _world()
    result = open_world_loop(initial, stream, budget=4, epochs=15, test=test)
    assert all(a is not None and a > 0.9 for a in result.auroc), result.auroc
    assert all(q <= 4 for q in result.queried) and result.labels_used == sum(result.queried) <= 12
    assert result.classes[:2] == [10, 20] and len(result.classes) > 2  # new classes were discovered and added
    assert len(result.test_accuracy) == 3


def test_zero_budget_queries_nothing_and_static_keeps_the_budget() -> None:
    initial, stream, test = _world()
    result = open_world_loop(initial, stream, budget=0, epochs=5, test=test)
    assert result.labels_used == 0 and result.classes == [10, 20]
    assert len(set(result.test_accuracy)) == 1  # no labels, no update: the model never changes
    static = open_world_loop(initial, stream, budget=3, epochs=5, update=False, test=test)
    assert static.labels_used <= 9 and len(static.auroc) == 3


def test_scores_and_threshold() -> None:
    logits = torch.tensor([[10.0, 0.0], [0.1, 0.0]])
    energy = novelty_scores(logits)
    assert float(energy[0]) < float(energy[1])  # confident = low energy = known
    assert float(novelty_scores(logits, "msp")[0]) < float(novelty_scores(logits, "msp")[1])
    assert rejection_threshold(torch.arange(101.0), 0.95) == pytest.approx(95.0)
    with pytest.raises(ToolError, match="tpr"):
        rejection_threshold(torch.arange(3.0), 1.0)


def test_tool_and_bad_input(tmp_path: Path) -> None:
    initial, stream, _ = _world()
    np.savez(tmp_path / "init.npz", x=initial.x.numpy(), y=initial.y.numpy())
    np.savez(tmp_path / "s0.npz", x=stream[0].x.numpy(), y=stream[0].y.numpy())
    registry = ToolRegistry()
    registry.register(open_world_tool)
    args = {"initial": str(tmp_path / "init.npz"), "stream": [str(tmp_path / "s0.npz")], "budget": 2, "epochs": 3}
    out = registry.run_sync("open_world_loop", args, isolation="inline")
    assert out.labels_used <= 2  # type: ignore[attr-defined]
    np.savez(tmp_path / "odd.npz", x=np.zeros((4, 3), np.float32), y=np.zeros(4, np.int64))
    with pytest.raises(ToolError, match="features"):
        registry.run_sync("open_world_loop", {**args, "stream": [str(tmp_path / "odd.npz")]}, isolation="inline")
    with pytest.raises(ToolError, match="budget"):
        registry.run_sync("open_world_loop", {**args, "budget": -1}, isolation="inline")
    with pytest.raises(ToolError, match="two known classes"):
        registry.run_sync(
            "open_world_loop",
            {**args, "initial": str(tmp_path / "odd.npz"), "stream": [str(tmp_path / "odd.npz")]},
            isolation="inline",
        )
