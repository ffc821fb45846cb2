"""DATM: matching loss decreases, soft labels start at the expert's logits, the window follows the budget."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from malot_data.core.functional import functional_forward
from malot_data.core.nets import make_mlp
from malot_data.datm_distill import datm, difficulty_window, expert_trajectories

from malot.errors import ToolError
from malot.tools import tool_of
from malot.tools.registry import ToolRegistry


def _data(n: int = 400, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(4, 8, generator=g) * 2
    y = torch.randint(4, (n,), generator=g)
    return centres[y] + torch.randn(n, 8, generator=g), y


@pytest.fixture(scope="module")
def setup() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor, list[list[torch.Tensor]]]:
    torch.manual_seed(0)
    x, y = _data()
    model = make_mlp(8, 4, 16)
    return model, x, y, expert_trajectories(model, x, y, experts=2, epochs=6, seed=0)


@pytest.mark.slow
def test_matching_loss_decreases(setup) -> None:  # type: ignore[no-untyped-def]
    model, x, y, trajectories = setup
    result = datm(model, x, y, trajectories, 2, iterations=60, syn_steps=5, window=(0, 2), seed=0)
    assert result.x.shape == (8, 8) and result.label_logits is not None
    assert np.mean(result.losses[-10:]) < 0.9 * np.mean(result.losses[:10])


def test_soft_labels_start_at_expert_logits_on_correct_samples(setup) -> None:  # type: ignore[no-untyped-def]
    model, x, y, trajectories = setup
    result = datm(model, x, y, trajectories, 3, iterations=0, window=(0, 3), seed=1)
    expert = functional_forward(model, trajectories[0][3], result.x).detach()
    assert result.label_logits is not None and torch.allclose(result.label_logits, expert)
    assert bool((expert.argmax(dim=1) == result.labels).all())  # only correctly classified samples initialise
    assert sorted(result.labels.tolist()) == sorted([0, 1, 2, 3] * 3)
    hard = datm(model, x, y, trajectories, 3, iterations=0, soft_labels=False, window=(0, 3), seed=1)
    assert hard.label_logits is None


def test_window_moves_later_with_ipc() -> None:
    windows = [difficulty_window(ipc, 60, 2) for ipc in (1, 10, 50, 500, 1000)]
    assert windows[0][0] == 0 and windows[0][1] < windows[1][1] <= windows[2][1] <= windows[3][1]
    assert windows[3][0] > 0 and all(lo <= hi <= 58 for lo, hi in windows)


def test_bad_input(setup) -> None:  # type: ignore[no-untyped-def]
    model, x, y, trajectories = setup
    with pytest.raises(ToolError, match="equal length"):
        datm(model, x, y, [trajectories[0], trajectories[1][:3]], 1)
    with pytest.raises(ToolError, match="fewer than ipc"):
        datm(model, x, y, trajectories, 500, iterations=1)
    with pytest.raises(ToolError, match="window"):
        datm(model, x, y, trajectories, 1, window=(0, 9))
    with pytest.raises(ToolError, match="cannot match"):
        difficulty_window(1, 2, 2)


def test_tool_writes_soft_labels(tmp_path: Path) -> None:
    import malot_data.datm_distill as module

    x, y = _data(120)
    np.savez(tmp_path / "d.npz", x=x.numpy(), y=y.numpy())
    registry = ToolRegistry()
    t = tool_of(module.datm_distill)
    assert t is not None
    registry.register(t)
    args = {
        "data": f"{tmp_path}/d.npz:x",
        "labels": f"{tmp_path}/d.npz:y",
        "ipc": 1,
        "out": str(tmp_path / "s.npz"),
        "experts": 1,
        "epochs": 4,
        "iterations": 3,
        "syn_steps": 2,
        "hidden": 8,
    }
    out = registry.run_sync("datm_distill", args, isolation="inline").model_dump()
    saved = np.load(tmp_path / "s.npz")
    assert out["size"] == 4 and saved["x"].shape == (4, 8) and np.allclose(saved["soft_labels"].sum(1), 1)
    with pytest.raises(ToolError, match="labels"):
        registry.run_sync("datm_distill", {**args, "labels": f"{tmp_path}/d.npz:x"}, isolation="inline")
