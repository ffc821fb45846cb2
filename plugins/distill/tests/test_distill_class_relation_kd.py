"""class_relation_kd (Cr-KD): w ≡ 0 is the base loss (plain CE without novel data), zero KD at equality, tool run."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from malot_distill.class_relation_kd import ClassRelationKdInput, class_relation_kd, relation_kd, train_cr_kd
from malot_distill.core.clustering import cluster_accuracy, sinkhorn
from malot_distill.core.data import save_tensors
from malot_distill.core.mlp import build_mlp, save_mlp
from malot_distill.core.toy import mixture_task

from malot.errors import ToolError


def _ncd() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    x, y = mixture_task(5, 1, 6, 200, seed=0)
    known = y < 3
    return x[known], y[known], x[~known], y[~known] - 3


def test_zero_weight_without_novel_data_is_plain_cross_entropy() -> None:
    x_l, y_l, _, _ = _ncd()
    student = build_mlp([6, 8, 5], seed=0)
    expected = float(F.cross_entropy(student(x_l), y_l).detach())
    teacher = build_mlp([6, 8, 3], seed=1)
    result = train_cr_kd(student, teacher, x_l, y_l, None, known=3, steps=1, weighting="zero", batch_size=len(x_l))
    assert result.losses[0] == pytest.approx(expected, rel=1e-6)


def test_zero_weight_is_the_base_loss_with_novel_data() -> None:
    x_l, y_l, x_u, _ = _ncd()
    teacher = build_mlp([6, 8, 3], seed=1)
    a, b = build_mlp([6, 8, 5], seed=0), build_mlp([6, 8, 5], seed=0)
    ra = train_cr_kd(a, teacher, x_l, y_l, x_u, known=3, steps=3, weighting="zero")
    rb = train_cr_kd(b, teacher, x_l, y_l, x_u, known=3, steps=3, weighting="constant", kd_weight=0.0)
    assert ra.losses == rb.losses
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_relation_kd_is_zero_when_the_known_head_equals_the_teacher() -> None:
    teacher = build_mlp([6, 8, 3], seed=1)
    student = build_mlp([6, 8, 5], seed=0)
    with torch.no_grad():
        student.body.load_state_dict(copy.deepcopy(teacher.body.state_dict()))
        student.head.weight[:3] = teacher.head.weight
        student.head.bias[:3] = teacher.head.bias
    x = torch.randn(9, 6)
    # equal up to float rounding (the 5-way and 3-way heads are different matrix products)
    assert float(relation_kd(student(x)[:, :3], teacher(x), 2.0).detach().abs().max()) < 1e-6
    logits = teacher(x)
    assert float(relation_kd(logits, logits.detach(), 2.0).detach().abs().max()) == 0.0


def test_learned_weights_stay_in_the_unit_interval_and_move() -> None:
    x_l, y_l, x_u, _ = _ncd()
    result = train_cr_kd(build_mlp([6, 8, 5], seed=0), build_mlp([6, 8, 3], seed=1), x_l, y_l, x_u, known=3, steps=4)
    assert all(0.0 < w < 1.0 for w in result.mean_weights)
    assert result.mean_weights[-1] != 0.5


def test_sinkhorn_is_balanced_and_cluster_accuracy_ignores_label_names() -> None:
    q = sinkhorn(torch.randn(12, 3), epsilon=0.5, iterations=200)
    assert torch.allclose(q.sum(1), torch.ones(12), atol=1e-4)
    assert torch.allclose(q.sum(0), torch.full((3,), 4.0), atol=1e-3)
    truth = torch.tensor([0, 0, 1, 1, 2, 2])
    assert cluster_accuracy((truth + 1) % 3, truth) == 1.0


def test_class_relation_kd_tool_through_the_registry_and_bad_inputs(tmp_path: Path) -> None:
    from malot.tools import get_registry

    x_l, y_l, x_u, y_u = _ncd()
    teacher = save_mlp(build_mlp([6, 8, 3], seed=1), tmp_path / "t.safetensors")
    data = save_tensors({"x": x_l, "y": y_l, "x_unlabeled": x_u, "y_unlabeled": y_u}, tmp_path / "d.safetensors")
    args = {"teacher": str(teacher), "data": str(data), "out": str(tmp_path / "s.safetensors"), "novel_classes": 2}
    out = get_registry().run_sync("class_relation_kd", {**args, "steps": 3}, isolation="inline")
    assert out.novel_accuracy is not None and 0.5 <= out.novel_accuracy <= 1.0  # type: ignore[attr-defined]
    with pytest.raises(ToolError, match="labels must lie"):
        class_relation_kd(ClassRelationKdInput(**{**args, "novel_classes": 1}))
    no_u = save_tensors({"x": x_l, "y": y_l}, tmp_path / "nou.safetensors")
    with pytest.raises(ToolError, match="x_unlabeled"):
        class_relation_kd(ClassRelationKdInput(**{**args, "data": str(no_u)}))
