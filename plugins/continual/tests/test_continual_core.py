"""Shared pieces: dataset checks (empty, NaN, shapes, labels), model files, mismatched checkpoints and memories."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from malot_continual.core.data import load_npz
from malot_continual.core.mlp import build_mlp, load_mlp, save_mlp
from malot_continual.core.synthetic import blobs
from malot_continual.cuber import GradientMemory, learn_task

from malot.errors import ToolError


def test_dataset_checks(tmp_path: Path) -> None:
    cases = {
        "empty": (np.zeros((0, 3), np.float32), np.zeros(0, np.int64), "empty"),
        "nan": (np.array([[np.nan, 1.0]], np.float32), np.zeros(1, np.int64), "NaN"),
        "flat": (np.zeros(3, np.float32), np.zeros(3, np.int64), "2-D"),
        "float_labels": (np.zeros((2, 2), np.float32), np.zeros(2, np.float32), "integers"),
        "negative": (np.zeros((2, 2), np.float32), np.array([0, -1]), "non-negative"),
    }
    for name, (x, y, message) in cases.items():
        np.savez(tmp_path / f"{name}.npz", x=x, y=y)
        with pytest.raises(ToolError, match=message):
            load_npz(tmp_path / f"{name}.npz")
    np.savez(tmp_path / "nolabels.npz", x=np.zeros((2, 2), np.float32))
    with pytest.raises(ToolError, match="'x' and 'y'"):
        load_npz(tmp_path / "nolabels.npz")
    with pytest.raises(ToolError, match="does not exist"):
        load_npz(tmp_path / "missing.npz")


def test_model_files_round_trip_and_foreign_files_are_refused(tmp_path: Path) -> None:
    model = build_mlp(5, [7, 6], 3, heads=2)
    save_mlp(model, tmp_path / "m.safetensors")
    again = load_mlp(tmp_path / "m.safetensors")
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in model.state_dict().items())
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ToolError, match="not a continual-plugin model"):
        load_mlp(tmp_path / "other.safetensors")


def test_a_memory_from_another_architecture_is_refused(tmp_path: Path) -> None:
    data = blobs(torch.eye(3) * 4, 10)
    memory = GradientMemory()
    learn_task(build_mlp(3, [8, 8], 3, heads=2), data, memory, head=0, epochs=1)
    memory.save(tmp_path / "mem.safetensors")
    with pytest.raises(ToolError, match="memory has 2 layers"):
        learn_task(build_mlp(3, [8], 3, heads=2), data, GradientMemory.load(tmp_path / "mem.safetensors"), head=1)
    with pytest.raises(ToolError, match="head 5 does not exist"):
        learn_task(build_mlp(3, [8, 8], 3, heads=2), data, memory, head=5)
