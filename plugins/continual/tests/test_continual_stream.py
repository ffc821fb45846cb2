"""NEVIS'22 runner: deterministic, exact FLOP accounting, learner behaviours, the tool, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from malot_continual.core.mlp import build_mlp
from malot_continual.core.synthetic import linear_teacher_task
from malot_continual.stream import (
    ComputeMeter,
    MlpLearner,
    StreamTask,
    forward_flops,
    run_stream,
    run_stream_tool,
    training_flops,
)

from malot.errors import ToolError
from malot.tools import ToolRegistry


def _stream(n: int = 3) -> list[StreamTask]:
    proj, teacher = torch.randn(4, 10, generator=torch.Generator().manual_seed(0)), torch.randn(4, 3)
    return [
        StreamTask(f"t{i}", *(linear_teacher_task(proj, teacher, m, seed=10 * i + m) for m in (40, 30, 50)))
        for i in range(n)
    ]


def test_the_runner_is_deterministic() -> None:
    stream = _stream()
    a = run_stream(stream, MlpLearner(kind="finetune", epochs=2, hidden=(8,)))
    b = run_stream(stream, MlpLearner(kind="finetune", epochs=2, hidden=(8,)))
    assert a.errors == b.errors and a.cumulative_flops == b.cumulative_flops
    assert a.cumulative_flops == sorted(a.cumulative_flops) and len(a.errors) == 3


def test_flops_are_counted_exactly() -> None:
    model = build_mlp(10, [8], 3)
    assert forward_flops(model) == 2 * (10 * 8 + 8 * 3)
    assert training_flops(model, 5) == 5 * 3 * forward_flops(model)
    for p in model.body.parameters():
        p.requires_grad_(False)
    assert training_flops(model, 5) == 5 * (forward_flops(model) + 2 * 2 * 8 * 3)
    stream = _stream(1)
    meter = ComputeMeter()
    MlpLearner(kind="independent", epochs=2, hidden=(8,), learning_rates=(0.01,)).learn(stream[0], meter)
    fwd = 2 * (10 * 8 + 8 * 3)
    assert meter.flops == 3 * fwd * 2 * 40 + fwd * 30 + fwd * 50  # train, validate, test


def test_frozen_learner_keeps_the_first_body_and_costs_less() -> None:
    stream = _stream()
    learner = MlpLearner(kind="frozen", epochs=2, hidden=(8,))
    frozen = run_stream(stream, learner)
    first_body = learner._previous.body.state_dict()  # type: ignore[union-attr]
    full = run_stream(stream, MlpLearner(kind="finetune", epochs=2, hidden=(8,)))
    assert frozen.cumulative_flops[-1] < full.cumulative_flops[-1]
    for value in first_body.values():
        assert not value.requires_grad


def test_tool_and_bad_input(tmp_path: Path) -> None:
    files = []
    for task in _stream(2):
        entry = {"name": task.name}
        for split in ("train", "valid", "test"):
            data = getattr(task, split)
            np.savez(tmp_path / f"{task.name}_{split}.npz", x=data.x.numpy(), y=data.y.numpy())
            entry[split] = str(tmp_path / f"{task.name}_{split}.npz")
        files.append(entry)
    registry = ToolRegistry()
    registry.register(run_stream_tool)
    out = registry.run_sync("run_stream", {"stream": files, "epochs": 1, "hidden": [8]}, isolation="inline")
    assert len(out.errors) == 2 and out.total_flops == out.cumulative_flops[-1] > 0  # type: ignore[attr-defined]
    with pytest.raises(ToolError, match="positive"):
        registry.run_sync("run_stream", {"stream": files, "learning_rates": [0.0]}, isolation="inline")
    with pytest.raises(ToolError, match="learner"):
        registry.run_sync("run_stream", {"stream": files, "learner": "ewc"}, isolation="inline")
    np.savez(tmp_path / "wide.npz", x=np.zeros((4, 12), np.float32), y=np.zeros(4, np.int64))
    wide = {
        "name": "wide",
        "train": str(tmp_path / "wide.npz"),
        "valid": str(tmp_path / "wide.npz"),
        "test": str(tmp_path / "wide.npz"),
    }
    with pytest.raises(ToolError, match="features"):
        registry.run_sync("run_stream", {"stream": [files[0], wide], "epochs": 1}, isolation="inline")
