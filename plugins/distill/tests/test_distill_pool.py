"""distill_from_pool (DistillNearest / DistillWeighted): weights, τ → 0 = nearest, zero feature term, CE reduction."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from malot_distill.core.data import save_tensors
from malot_distill.core.mlp import build_mlp, save_mlp
from malot_distill.core.toy import mixture_task, train_ce
from malot_distill.distill_pool import DistillPoolInput, distill_from_pool, distill_pool, pool_weights

from malot.errors import ToolError


def test_weights_sum_to_one_and_tau_to_zero_is_one_hot_on_the_best_source() -> None:
    scores = [0.4, 0.9, 0.7]
    for tau in (10.0, 0.1, 0.01):
        assert sum(pool_weights(scores, tau)) == pytest.approx(1.0)
    assert pool_weights(scores, 1e-6) == [0.0, 1.0, 0.0] == pool_weights(scores, None)
    assert pool_weights(scores, 1e9) == pytest.approx([1 / 3] * 3)


def _pool() -> tuple[list[torch.nn.Module], torch.Tensor, torch.Tensor, torch.Tensor]:
    x, y = mixture_task(3, 1, 6, 90, seed=0)
    sources = [build_mlp([6, 12, 3], seed=i) for i in range(3)]
    train_ce(sources[2], x, y, steps=30)
    with torch.no_grad():  # sources 0 and 1 carry no information: constant features
        for source in sources[:2]:
            for p in source.parameters():
                p.zero_()
    return sources, x[:30], y[:30], x[30:]


def test_tau_to_zero_trains_exactly_like_distill_nearest() -> None:
    sources, x_l, y_l, x_u = _pool()
    base = build_mlp([6, 8, 3], seed=5)
    a, b = copy.deepcopy(base), copy.deepcopy(base)
    ra = distill_pool(a, sources, x_l, y_l, x_u, tau=1e-6, steps=10, seed=0, scores=[0.1, 0.2, 0.8])
    rb = distill_pool(b, sources, x_l, y_l, x_u, tau=None, steps=10, seed=0, scores=[0.1, 0.2, 0.8])
    assert ra.weights == rb.weights == [0.0, 0.0, 1.0]
    assert ra.losses == rb.losses
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_feature_weight_zero_is_plain_cross_entropy() -> None:
    sources, x_l, y_l, _ = _pool()
    base = build_mlp([6, 8, 3], seed=5)
    student = copy.deepcopy(base)
    result = distill_pool(
        student, sources, x_l, y_l, None, tau=0.1, steps=1, seed=0, scores=[1, 2, 3], feature_weight=0
    )
    assert result.losses[0] == pytest.approx(float(F.cross_entropy(base(x_l), y_l).detach()), rel=1e-6)


def test_feature_term_is_zero_when_projected_student_equals_the_source() -> None:
    from malot_distill.core.kd import feature_l2

    source = build_mlp([6, 12, 3], seed=0)
    student = copy.deepcopy(source)
    identity = torch.nn.Linear(12, 12)
    with torch.no_grad():
        identity.weight.copy_(torch.eye(12))
        identity.bias.zero_()
    x = torch.randn(7, 6)
    assert float(feature_l2(identity(student.features(x)), source.features(x)).detach().max()) == 0.0


def _files(tmp_path: Path) -> tuple[list[str], Path]:
    sources, x_l, y_l, x_u = _pool()
    paths = [str(save_mlp(s, tmp_path / f"s{i}.safetensors")) for i, s in enumerate(sources)]
    data = save_tensors(
        {"x": x_l, "y": y_l, "x_unlabeled": x_u, "x_test": x_u, "y_test": torch.zeros(60).long()},
        tmp_path / "d.safetensors",
    )
    return paths, data


def test_distill_from_pool_tool_through_the_registry(tmp_path: Path) -> None:
    from malot.tools import get_registry

    paths, data = _files(tmp_path)
    out = get_registry().run_sync(
        "distill_from_pool",
        {"sources": paths, "data": str(data), "out": str(tmp_path / "st.safetensors"), "steps": 5, "mode": "weighted"},
        isolation="inline",
    )
    assert sum(out.weights) == pytest.approx(1.0)  # type: ignore[attr-defined]
    assert out.nearest == 2 and out.test_accuracy is not None  # type: ignore[attr-defined]
    assert out.weights[2] > 0.9  # type: ignore[attr-defined]  # the relevant source dominates the pool


def test_distill_from_pool_bad_inputs(tmp_path: Path) -> None:
    paths, data = _files(tmp_path)
    wide = str(save_mlp(build_mlp([9, 4, 3], seed=0), tmp_path / "wide.safetensors"))
    with pytest.raises(ToolError, match="takes 9 features"):
        distill_from_pool(DistillPoolInput(sources=[wide], data=str(data), out=str(tmp_path / "o.safetensors")))
    one = save_tensors({"x": torch.randn(3, 6), "y": torch.tensor([0, 1, 1])}, tmp_path / "one.safetensors")
    with pytest.raises(ToolError, match="at least 2 labelled"):
        distill_from_pool(DistillPoolInput(sources=paths, data=str(one), out=str(tmp_path / "o.safetensors")))
    with pytest.raises(ToolError, match="does not exist"):
        distill_from_pool(DistillPoolInput(sources=paths, data=str(tmp_path / "nope"), out=str(tmp_path / "o")))
