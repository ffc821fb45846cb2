"""Group-wise consolidation: b = inf leaves a group unchanged, b = 0 is fine-tuning, rehearsal and the tool."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from malot_continual.consolidation import consolidated_train, consolidated_train_tool, consolidation_penalty
from malot_continual.core.mlp import build_mlp, train_epochs
from malot_continual.core.synthetic import linear_teacher_task

from malot.errors import ToolError
from malot.tools import ToolRegistry


def _tasks() -> list:  # type: ignore[type-arg]
    proj = torch.randn(4, 10, generator=torch.Generator().manual_seed(1))
    teachers = torch.randn(3, 4, 3, generator=torch.Generator().manual_seed(2))
    return [linear_teacher_task(proj, teachers[i], 64, seed=i) for i in range(3)]


def test_zero_strength_is_exactly_sequential_fine_tuning() -> None:
    tasks = _tasks()
    torch.manual_seed(0)
    model = build_mlp(10, [16, 16], 3, heads=3)
    reference = build_mlp(10, [16, 16], 3, heads=3)
    reference.load_state_dict(model.state_dict())
    consolidated_train(model, tasks, strengths={"body": 0.0, "heads": 0.0}, rehearsal=0, epochs=2, lr=0.01, seed=5)
    for t, data in enumerate(tasks):
        train_epochs(reference, data, epochs=2, lr=0.01, batch_size=32, head=t, seed=5 + t)
    for name, value in reference.state_dict().items():
        assert torch.equal(model.state_dict()[name], value), name


def test_infinite_strength_leaves_the_group_unchanged() -> None:
    tasks = _tasks()
    torch.manual_seed(0)
    model = build_mlp(10, [16, 16], 3, heads=3)
    consolidated_train(model, tasks[:1], strengths={}, epochs=2)  # learn the first task freely
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    result = consolidated_train(model, tasks, strengths={"body.0": math.inf}, rehearsal=8, epochs=2, consolidate_from=0)
    assert torch.equal(model.body[0].weight, before["body.0.weight"])
    assert result.max_change["body.0.weight"] == 0.0
    assert result.max_change["body.2.weight"] > 0.0  # the free group did move


def test_a_finite_strength_pulls_towards_the_old_weights() -> None:
    tasks = _tasks()
    moves = []
    for b in (0.0, 10.0):
        torch.manual_seed(0)
        model = build_mlp(10, [16, 16], 3, heads=3)
        consolidated_train(model, tasks[:1], strengths={}, epochs=2)
        old = model.body[0].weight.detach().clone()
        consolidated_train(model, tasks[1:], strengths={"body": b}, epochs=3, consolidate_from=0)
        moves.append(float((model.body[0].weight.detach() - old).norm()))
    assert moves[1] < moves[0]


def test_penalty_is_the_weighted_squared_distance() -> None:
    model = build_mlp(3, [2], 2)
    anchor = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    b = {n: (2.0 if n.startswith("body") else 0.0) for n, _ in model.named_parameters()}
    penalty = consolidation_penalty(model, anchor, b)
    assert penalty is not None
    assert torch.allclose(penalty, 2.0 * (model.body[0].weight ** 2).sum())


def test_tool_runs_from_the_registry_and_refuses_bad_input(tmp_path: Path) -> None:
    paths = []
    for i, task in enumerate(_tasks()[:2]):
        np.savez(tmp_path / f"t{i}.npz", x=task.x.numpy(), y=task.y.numpy())
        paths.append(str(tmp_path / f"t{i}.npz"))
    registry = ToolRegistry()
    registry.register(consolidated_train_tool)
    args = {
        "tasks": paths,
        "out": str(tmp_path / "m.safetensors"),
        "hidden": [16],
        "n_classes": 3,
        "epochs": 2,
        "strengths": {"body": "inf"},
    }
    out = registry.run_sync("consolidated_train", args, isolation="inline")
    assert len(out.accuracy) == 2 and len(out.accuracy[1]) == 2  # type: ignore[attr-defined]
    assert out.max_change["body.0.weight"] > 0  # type: ignore[attr-defined]  # a new model's first task trains it
    again = registry.run_sync(
        "consolidated_train", {**args, "model": str(tmp_path / "m.safetensors")}, isolation="inline"
    )
    assert again.max_change["body.0.weight"] == 0.0  # type: ignore[attr-defined]  # a given model's body is kept
    with pytest.raises(ToolError, match="no parameter name starts with"):
        registry.run_sync("consolidated_train", {**args, "strengths": {"encoder": 1.0}}, isolation="inline")
    with pytest.raises(ToolError, match=">= 0"):
        registry.run_sync("consolidated_train", {**args, "strengths": {"body": -1.0}}, isolation="inline")
    np.savez(tmp_path / "bad.npz", x=np.zeros((3, 7), np.float32), y=np.zeros(3, np.int64))
    with pytest.raises(ToolError, match="features"):
        registry.run_sync(
            "consolidated_train", {**args, "tasks": [paths[0], str(tmp_path / "bad.npz")]}, isolation="inline"
        )
