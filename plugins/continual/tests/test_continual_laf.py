"""LAF: the forget set's accuracy falls to chance while retained accuracy stays within ε; degenerate case; tool."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from malot_continual.core.mlp import accuracy, build_mlp, load_mlp, save_mlp, train_epochs
from malot_continual.core.synthetic import blobs
from malot_continual.laf import laf_unlearn, laf_unlearn_tool

from malot.errors import ToolError
from malot.tools import ToolRegistry

EPSILON = 0.05  # the stated retained-accuracy tolerance
CLASSES = 4


def _trained(seed: int = 0):  # type: ignore[no-untyped-def]
    centers = 3 * torch.randn(CLASSES, 8, generator=torch.Generator().manual_seed(seed))
    data = blobs(centers, 40, seed=seed)
    torch.manual_seed(seed)
    model = build_mlp(8, [32, 16], CLASSES)
    train_epochs(model, data, epochs=20, lr=0.01, seed=seed)
    forget = data.y == 0
    return model, data.subset(~forget), data.subset(forget)


@pytest.mark.slow
def test_forget_accuracy_falls_to_chance_and_retained_stays_within_epsilon() -> None:
    model, remain, forget = _trained()
    before = accuracy(model, remain)
    assert accuracy(model, forget) > 0.9
    report = laf_unlearn(model, remain.x, forget.x, extractor_steps=40, align_steps=40, vae_epochs=100, lr=0.005)
    assert accuracy(model, forget) <= 1.0 / CLASSES  # chance
    assert accuracy(model, remain) >= before - EPSILON
    assert len(report.extractor_losses) == 40 and len(report.alignment_losses) == 40


def test_no_steps_leaves_the_model_unchanged_and_only_the_body_moves() -> None:
    model, remain, forget = _trained()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    laf_unlearn(model, remain.x, forget.x, extractor_steps=0, align_steps=0, vae_epochs=5)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    laf_unlearn(model, remain.x, forget.x, extractor_steps=3, align_steps=3, vae_epochs=5)
    assert torch.equal(model.heads[0].weight, state["heads.0.weight"])  # label-free: the head is untouched
    assert not torch.equal(model.body[0].weight, state["body.0.weight"])


def test_bad_input() -> None:
    model, remain, forget = _trained()
    with pytest.raises(ToolError, match="features"):
        laf_unlearn(model, remain.x[:, :5], forget.x)
    with pytest.raises(ToolError, match="NaN"):
        laf_unlearn(model, remain.x, forget.x * float("nan"))
    with pytest.raises(ToolError, match="refit_head"):
        laf_unlearn(model, remain.x, forget.x, refit_head=True)


def test_tool_through_the_registry(tmp_path: Path) -> None:
    model, remain, forget = _trained()
    save_mlp(model, tmp_path / "m.safetensors")
    np.savez(tmp_path / "r.npz", x=remain.x.numpy(), y=remain.y.numpy())
    np.savez(tmp_path / "f.npz", x=forget.x.numpy(), y=forget.y.numpy())
    registry = ToolRegistry()
    registry.register(laf_unlearn_tool)
    args = {
        "model": str(tmp_path / "m.safetensors"),
        "remain": str(tmp_path / "r.npz"),
        "forget": str(tmp_path / "f.npz"),
        "out": str(tmp_path / "u.safetensors"),
        "extractor_steps": 2,
        "align_steps": 2,
    }
    out = registry.run_sync("laf_unlearn", args, isolation="inline")
    assert out.forget_accuracy_before > 0.9  # type: ignore[attr-defined]
    assert isinstance(load_mlp(tmp_path / "u.safetensors"), torch.nn.Module)
    with pytest.raises(ToolError, match="both the retained and the forget"):
        registry.run_sync("laf_unlearn", {**args, "forget": str(tmp_path / "r.npz")}, isolation="inline")
