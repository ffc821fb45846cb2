"""sla_train (SLA): M = 1 is plain cross-entropy, aggregation over one transform is the plain prediction, zero SD
term at equality, joint labels on rotations, tool run on sklearn's digits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from malot_distill.core.data import save_tensors
from malot_distill.core.kd import soft_kl
from malot_distill.sla import SlaInput, aggregated_logits, build_sla_net, joint_loss, sla_train, transformations

from malot.errors import ToolError


def test_one_transformation_is_plain_cross_entropy_and_plain_prediction() -> None:
    net = build_sla_net(1, 3, 1, width=4)
    x, y = torch.randn(6, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    ts = transformations("identity")
    assert torch.equal(joint_loss(net, x, y, ts), F.cross_entropy(net(x), y))
    assert torch.equal(aggregated_logits(net, x, ts), net(x))


def test_joint_labels_pair_class_and_rotation() -> None:
    ts = transformations("rotation")
    x = torch.arange(16.0).view(1, 1, 4, 4)
    assert len(ts) == 4 and torch.equal(ts[0](x), x) and torch.equal(ts[2](x), torch.rot90(x, 2, dims=(-2, -1)))
    net = build_sla_net(1, 2, 4, width=4)
    y = torch.tensor([1])
    manual = sum(F.cross_entropy(net(t(x)), torch.tensor([1 * 4 + j])) for j, t in enumerate(ts)) / 4
    assert torch.allclose(joint_loss(net, x, y, ts), manual)


def test_self_distillation_term_is_zero_when_the_head_equals_the_aggregated_teacher() -> None:
    net = build_sla_net(1, 3, 1, width=4)
    with torch.no_grad():
        net.self_distill.load_state_dict(net.joint.state_dict())
    x = torch.randn(5, 1, 8, 8)
    teacher = aggregated_logits(net, x, transformations("identity")).detach()
    assert float(soft_kl(net.sd(x), teacher).detach().abs().max()) == 0.0


def _digits(tmp_path: Path) -> Path:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.images[:80], dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target[:80], dtype=torch.long)
    return save_tensors({"x": x, "y": y, "x_test": x[:40], "y_test": y[:40]}, tmp_path / "digits.safetensors")


def test_sla_tool_through_the_registry_and_bad_inputs(tmp_path: Path) -> None:
    from malot.tools import get_registry

    data = _digits(tmp_path)
    out = get_registry().run_sync(
        "sla_train", {"data": str(data), "out": str(tmp_path / "n.safetensors"), "steps": 3, "width": 4},
        isolation="inline",
    )  # fmt: skip
    assert out.transforms == 4 and out.self_distilled_accuracy is not None  # type: ignore[attr-defined]
    flat = save_tensors({"x": torch.randn(4, 64), "y": torch.zeros(4).long()}, tmp_path / "flat.safetensors")
    with pytest.raises(ToolError, match="must be images"):
        sla_train(SlaInput(data=str(flat), out=str(tmp_path / "o.safetensors")))
    rect = save_tensors({"x": torch.randn(4, 8, 6), "y": torch.zeros(4).long()}, tmp_path / "rect.safetensors")
    with pytest.raises(ToolError, match="square"):
        sla_train(SlaInput(data=str(rect), out=str(tmp_path / "o.safetensors")))
