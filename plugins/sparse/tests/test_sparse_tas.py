"""TAS: the degenerate search space is the plain MLP, E[FLOPs] is exact, the cost loss, the FLOP target, the tool."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from malot_sparse.core.mlp import build_mlp  # noqa: E402
from malot_sparse.core.structured import mlp_flops, shrink_widths  # noqa: E402
from malot_sparse.core.supernet import channel_interpolate  # noqa: E402
from malot_sparse.tas import build_supernet, search, tas_cost_loss  # noqa: E402

from malot.errors import ToolError  # noqa: E402


def test_a_single_width_and_depth_choice_is_exactly_the_unpruned_mlp() -> None:
    torch.manual_seed(0)
    teacher = build_mlp(5, [8, 8, 8], 3)
    net = build_supernet(5, 8, 3, 3, fractions=[1.0], depths=[3], teacher=teacher)
    x = torch.randn(10, 5)
    assert torch.allclose(net(x), teacher(x), atol=1e-6)
    assert torch.allclose(net(x, hard=True), teacher(x), atol=1e-6)
    assert float(net.expected_flops().detach()) == mlp_flops(5, [8, 8, 8], 3)


def test_channel_interpolation_keeps_the_width_and_mean() -> None:
    features = torch.tensor([[1.0, 3.0, 5.0, 7.0]])
    assert torch.equal(channel_interpolate(features, 4), features)
    assert torch.equal(channel_interpolate(features, 2), torch.tensor([[2.0, 6.0]]))
    assert channel_interpolate(features[:, :2], 4).shape == (1, 4)


def test_expected_flops_equal_the_enumerated_expectation() -> None:
    torch.manual_seed(1)
    net = build_supernet(6, 12, 3, 4, fractions=[0.25, 0.5, 1.0], depths=[1, 2, 3])
    with torch.no_grad():
        net.width_logits.normal_()
        net.depth_logits.normal_()
    pw = torch.softmax(net.width_logits.detach(), dim=1)
    pd = torch.softmax(net.depth_logits.detach(), dim=0)
    expected = 0.0
    for choice in itertools.product(range(3), repeat=3):
        widths = [net.choices[c] for c in choice]
        p_widths = float(torch.prod(torch.stack([pw[i, c] for i, c in enumerate(choice)])))
        for d_index, depth in enumerate(net.depths):
            expected += p_widths * float(pd[d_index]) * mlp_flops(6, widths[:depth], 4)
    assert float(net.expected_flops().detach()) == pytest.approx(expected, rel=1e-5)


def test_cost_loss_is_zero_in_the_band_and_pushes_towards_the_target() -> None:
    flops = torch.tensor(1000.0, requires_grad=True)
    assert float(tas_cost_loss(flops, 1020, 1000, 0.05)) == 0.0
    above = tas_cost_loss(flops, 2000, 1000, 0.05)
    above.backward()
    assert float(above) == pytest.approx(torch.log(torch.tensor(1000.0)).item()) and float(flops.grad) > 0
    flops.grad = None
    below = tas_cost_loss(flops, 100, 1000, 0.05)
    below.backward()
    assert float(flops.grad) < 0  # gradient descent raises E[F] when the network is too small


def _task(seed: int = 0, n: int = 300) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    return x, ((x[:, 0] * x[:, 1] > 0).long() + (x[:, 2] > 0.5).long())


def test_the_searched_argmax_architecture_meets_the_flop_target() -> None:
    x, y = _task()
    torch.manual_seed(0)
    net = build_supernet(8, 32, 3, 3, fractions=[0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0])
    full = mlp_flops(8, [32, 32, 32], 3)
    result = search(net, x[:150], y[:150], x[150:], y[150:], target_flops=0.4 * full, steps=150, tolerance=0.1)
    assert abs(result.flops / full - 0.4) <= 0.1 * 0.4
    assert result.flops == mlp_flops(8, result.widths, 3) and len(result.widths) == result.depth
    target = 0.4 * full  # the expected FLOPs moved towards the target
    assert abs(result.expected_flops[-1] - target) < abs(result.expected_flops[0] - target)


def test_torch_pruning_shrink_keeps_the_strongest_units() -> None:
    torch.manual_seed(0)
    model = build_mlp(4, [6], 2)
    with torch.no_grad():
        model[0].weight[:3].mul_(100.0)  # units 0-2 dominate the L1 group magnitude
        model[2].weight[:, 3:] = 0.0  # units 3-5 do not reach the output
    pruned = shrink_widths(model, [3])
    x = torch.randn(7, 4)
    assert pruned[0].out_features == 3 and pruned[2].in_features == 3
    assert torch.allclose(pruned(x), model(x), atol=1e-4)
    with pytest.raises(ToolError, match="cannot shrink"):
        shrink_widths(model, [9])


def test_bad_search_spaces_are_clear_errors() -> None:
    with pytest.raises(ToolError, match="fractions"):
        build_supernet(4, 8, 2, 2, fractions=[0.0, 1.0])
    with pytest.raises(ToolError, match="depth"):
        build_supernet(4, 8, 2, 2, depths=[3])
    with pytest.raises(ToolError, match="teacher"):
        build_supernet(4, 8, 2, 2, teacher=build_mlp(4, [9, 9], 2))


@pytest.mark.slow
def test_tas_search_tool_through_the_registry(tmp_path: Path) -> None:
    from malot_sparse.core.mlp import load_mlp, save_mlp
    from safetensors.torch import save_file

    from malot.tools import get_registry

    x, y = _task(1, 400)
    data = tmp_path / "data.safetensors"
    save_file({"x": x, "y": y}, str(data))
    args = {
        "data": str(data),
        "out": str(tmp_path / "tas.safetensors"),
        "width": 16,
        "layers": 2,
        "search_steps": 60,
        "kd_steps": 60,
        "teacher_steps": 60,
        "tolerance": 0.2,
    }
    out = get_registry().run_sync("tas_search", args, isolation="inline")
    student, _, extra = load_mlp(out.out)  # type: ignore[attr-defined]
    assert student(x).shape == (400, 3)
    assert extra["flops"] == out.flops == mlp_flops(8, out.widths, 3)  # type: ignore[attr-defined]
    assert out.flops_ratio == pytest.approx(out.flops / out.teacher_flops)  # type: ignore[attr-defined]
    uneven = save_mlp(build_mlp(8, [16, 8], 3), tmp_path / "uneven.safetensors")
    with pytest.raises(ToolError, match="widths differ"):
        get_registry().run_sync("tas_search", {**args, "teacher": str(uneven)}, isolation="inline")
    wrong = save_mlp(build_mlp(8, [16, 16], 5), tmp_path / "wrong.safetensors")  # predicts 5 classes, the data 3
    with pytest.raises(ToolError, match="predicts 5 classes"):
        get_registry().run_sync("tas_search", {**args, "teacher": str(wrong)}, isolation="inline")
    with pytest.raises(ToolError, match="flops_ratio"):
        get_registry().run_sync("tas_search", {**args, "flops_ratio": 0}, isolation="inline")
