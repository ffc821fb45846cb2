"""meta_dmoe_adapt (Meta-DMoE): identity aggregator = plain KD, frozen experts, zero step at equality, tool run."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from malot_distill.core.data import save_tensors
from malot_distill.core.mlp import build_mlp, save_mlp
from malot_distill.meta_dmoe import (
    MetaDmoeInput,
    adapt,
    adapt_body,
    build_aggregator,
    meta_dmoe_adapt,
    meta_train,
)

from malot.errors import ToolError


def test_one_expert_with_identity_aggregator_is_plain_feature_kd() -> None:
    expert = build_mlp([4, 8, 3], seed=0)
    student = build_mlp([4, 8, 3], seed=1)
    x = torch.randn(10, 4)
    got = adapt_body(student, [expert], build_aggregator("mean", 8, 8), x, alpha=0.5)
    manual = copy.deepcopy(student)
    loss = (manual.features(x) - expert.features(x).detach()).pow(2).mean()
    loss.backward()
    for name, param in manual.body.named_parameters():
        assert param.grad is not None
        assert torch.allclose(got[name], param - 0.5 * param.grad, atol=1e-6)


def test_student_equal_to_teacher_does_not_move() -> None:
    expert = build_mlp([4, 8, 3], seed=0)
    student = copy.deepcopy(expert)
    got = adapt_body(student, [expert], build_aggregator("mean", 8, 8), torch.randn(10, 4), alpha=1.0, inner_steps=3)
    assert all(torch.equal(got[n], p) for n, p in student.body.named_parameters())


def _domains() -> tuple[list[torch.nn.Module], torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    xs, ys, ds = [], [], []
    for d in range(3):
        x = torch.randn(40, 4, generator=gen) + d
        xs.append(x)
        ys.append((x[:, 0] > d).long())
        ds.append(torch.full((40,), d))
    experts = [build_mlp([4, 8, 2], seed=10 + d) for d in range(3)]
    return experts, torch.cat(xs), torch.cat(ys), torch.cat(ds)


def test_meta_training_keeps_experts_frozen_and_alpha_zero_means_no_adaptation() -> None:
    experts, x, y, d = _domains()
    frozen = [copy.deepcopy(e.state_dict()) for e in experts]
    student = build_mlp([4, 6, 2], seed=3)
    agg = build_aggregator("transformer", 8, 6, seed=0)
    agg_before = copy.deepcopy(agg.state_dict())
    result = meta_train(student, experts, agg, x, y, d, episodes=3, alpha=0.0, batch_size=8)
    assert len(result.losses) == 3
    assert all(torch.equal(a[k], e.state_dict()[k]) for a, e in zip(frozen, experts, strict=True) for k in a)
    assert all(torch.equal(agg_before[k], v) for k, v in agg.state_dict().items())  # α = 0: no KD, plain CE
    assert torch.equal(adapt(student, experts, agg, x, alpha=0.0), student(x).detach())
    meta_train(student, experts, agg, x, y, d, episodes=2, alpha=0.1, batch_size=8)
    assert any(not torch.equal(agg_before[k], v) for k, v in agg.state_dict().items())


def test_meta_dmoe_tool_through_the_registry_and_bad_inputs(tmp_path: Path) -> None:
    from malot.tools import get_registry

    experts, x, y, d = _domains()
    paths = [str(save_mlp(e, tmp_path / f"e{i}.safetensors")) for i, e in enumerate(experts)]
    student = save_mlp(build_mlp([4, 6, 2], seed=3), tmp_path / "s.safetensors")
    source = save_tensors({"x": x, "y": y, "domain": d}, tmp_path / "src.safetensors")
    target = save_tensors({"x": x[:20] + 3, "y": y[:20]}, tmp_path / "tgt.safetensors")
    args = {"experts": paths, "student": str(student), "target": str(target), "out": str(tmp_path / "a.safetensors")}
    out = get_registry().run_sync(
        "meta_dmoe_adapt", {**args, "source_data": str(source), "episodes": 2, "batch_size": 8}, isolation="inline"
    )
    assert out.meta_loss_first is not None and out.accuracy_after is not None  # type: ignore[attr-defined]
    with pytest.raises(ToolError, match="mean aggregator needs"):
        meta_dmoe_adapt(MetaDmoeInput(**args, aggregator="mean"))
    bad = save_tensors({"x": x, "y": y, "domain": d + 5}, tmp_path / "bad.safetensors")
    with pytest.raises(ToolError, match="labels must lie"):
        meta_dmoe_adapt(MetaDmoeInput(**args, source_data=str(bad), episodes=1))
    wide = save_tensors({"x": torch.randn(5, 7)}, tmp_path / "wide.safetensors")
    with pytest.raises(ToolError, match="same input width"):
        meta_dmoe_adapt(MetaDmoeInput(**{**args, "target": str(wide)}))
