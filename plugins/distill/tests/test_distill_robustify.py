"""robustify (efficient robustification): only the subset changes, zero update at equality, CE reduction, tool run."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from malot_distill.core.data import save_tensors
from malot_distill.core.mlp import build_mlp, save_mlp
from malot_distill.core.toy import mixture_task
from malot_distill.robustify import RobustifyInput, gaussian_noise, robustify, robustify_large, select_subset

from malot.errors import ToolError


def test_only_the_subset_changes() -> None:
    x, y = mixture_task(3, 1, 5, 64, seed=0)
    large, small = build_mlp([5, 16, 16, 3], seed=0), build_mlp([5, 8, 3], seed=1)
    before = copy.deepcopy(large.state_dict())
    subset = select_subset(large, ["head"])
    robustify_large(large, small, x, y, gaussian_noise(1.0), subset, steps=5, lr=1e-2)
    after = large.state_dict()
    assert subset == ["head.weight", "head.bias"]
    assert all(torch.equal(before[n], after[n]) for n in before if not n.startswith("head"))
    assert any(not torch.equal(before[n], after[n]) for n in subset)


def test_teacher_equal_to_student_gives_zero_loss_and_no_change() -> None:
    x, y = mixture_task(3, 1, 5, 64, seed=0)
    large = build_mlp([5, 16, 3], seed=0)
    before = copy.deepcopy(large.state_dict())
    result = robustify_large(large, copy.deepcopy(large), x, y, gaussian_noise(1.0), ["head.weight"], steps=4, lr=0.1)
    assert max(result.losses) == 0.0
    assert all(torch.equal(before[n], v) for n, v in large.state_dict().items())


def test_without_kd_terms_the_objective_is_plain_cross_entropy() -> None:
    x, y = mixture_task(3, 1, 5, 40, seed=0)
    large = build_mlp([5, 16, 3], seed=0)
    expected = float(F.cross_entropy(large(x), y).detach())
    result = robustify_large(
        large, build_mlp([5, 4, 3], seed=1), x, y, gaussian_noise(1.0), ["head.bias"], steps=1,
        robust_weight=0.0, clean_weight=0.0, ce_weight=1.0, batch_size=40,
    )  # fmt: skip
    assert result.losses[0] == pytest.approx(expected, rel=1e-6)


def test_robustify_tool_through_the_registry_and_bad_inputs(tmp_path: Path) -> None:
    from malot.tools import get_registry

    x, y = mixture_task(3, 1, 5, 64, seed=0)
    data = save_tensors({"x": x, "y": y}, tmp_path / "d.safetensors")
    large = save_mlp(build_mlp([5, 16, 16, 3], seed=0), tmp_path / "l.safetensors")
    small = save_mlp(build_mlp([5, 8, 3], seed=1), tmp_path / "s.safetensors")
    args = {"large": str(large), "small": str(small), "data": str(data), "out": str(tmp_path / "o.safetensors")}
    out = get_registry().run_sync("robustify", {**args, "steps": 3, "small_steps": 3}, isolation="inline")
    assert out.tuned == ["head.weight", "head.bias"] and 0 < out.tuned_fraction < 1  # type: ignore[attr-defined]
    with pytest.raises(ToolError, match="no parameter matches"):
        robustify(RobustifyInput(**args, subset=["attention"]))
    other = save_mlp(build_mlp([5, 8, 4], seed=1), tmp_path / "s4.safetensors")
    with pytest.raises(ToolError, match="share input width and classes"):
        robustify(RobustifyInput(**{**args, "small": str(other)}))
