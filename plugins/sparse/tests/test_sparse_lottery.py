"""Lottery tickets: IMP sparsity 1 − (1 − p)^r, survivors equal the rewound weights, the tool through the registry."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from malot_sparse.core.mlp import build_mlp, load_mlp, train_classifier  # noqa: E402
from malot_sparse.lottery import expected_remaining, imp  # noqa: E402

from malot.errors import ToolError  # noqa: E402


def _data(seed: int = 0, n: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    return x, (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 1).long()


def _trainer(x: torch.Tensor, y: torch.Tensor):  # type: ignore[no-untyped-def]
    def train(model: torch.nn.Module, steps: int, seed: int) -> None:
        train_classifier(model, x, y, steps=steps, lr=0.01, batch_size=64, seed=seed)

    return train


@pytest.mark.parametrize(("p", "rounds", "k"), [(0.2, 5, 0), (0.5, 3, 4), (0.75, 2, 10)])
def test_sparsity_after_r_rounds_is_one_minus_one_minus_p_to_the_r_and_survivors_are_rewound(
    p: float, rounds: int, k: int
) -> None:
    torch.manual_seed(0)
    model = build_mlp(6, [16, 8], 3)
    theta0 = {n: t.detach().clone() for n, t in model.state_dict().items()}
    x, y = _data()
    result = imp(model, _trainer(x, y), rounds=rounds, p=p, steps=12, rewind_step=k)
    total = sum(m.numel() for m in result.masks.values())
    kept = sum(int(m.sum()) for m in result.masks.values())
    assert kept == expected_remaining(total, p, rounds)
    assert abs(result.final_sparsity - (1 - (1 - p) ** rounds)) <= rounds / total
    assert all(b >= a for a, b in zip(result.sparsity, result.sparsity[1:], strict=False))  # masks only grow
    for name, tensor in model.state_dict().items():
        rewind = result.rewind_point[name]
        if name in result.masks:
            mask = result.masks[name]
            assert torch.equal(tensor[mask], rewind[mask])  # survivors: exactly θ_k
            assert bool((tensor[~mask] == 0).all())
        else:
            assert torch.equal(tensor, rewind)  # biases rewound too
    if k == 0:
        assert all(torch.equal(result.rewind_point[n], theta0[n]) for n in theta0)  # k = 0 is the reset to θ₀
    else:
        assert not torch.equal(result.rewind_point["0.weight"], theta0["0.weight"])
    assert not any(name.endswith(("_orig", "_mask")) for name in model.state_dict())  # prune hooks removed


def test_a_ticket_trains_with_its_pruned_weights_held_at_zero() -> None:
    torch.manual_seed(1)
    model = build_mlp(6, [16], 3)
    x, y = _data(1)
    result = imp(model, _trainer(x, y), rounds=2, p=0.5, steps=10)
    losses = train_classifier(model, x, y, steps=30, lr=0.01, masks=result.masks)
    assert losses[-1] < losses[0]
    params = dict(model.named_parameters())
    for name, mask in result.masks.items():
        assert bool((params[name][~mask] == 0).all())


def test_bad_arguments_are_clear_errors() -> None:
    model = build_mlp(6, [8], 3)
    x, y = _data()
    with pytest.raises(ToolError, match="in \\(0, 1\\)"):
        imp(model, _trainer(x, y), rounds=1, p=1.0, steps=5)
    with pytest.raises(ToolError, match="rewind_step"):
        imp(model, _trainer(x, y), rounds=1, p=0.5, steps=5, rewind_step=9)
    with pytest.raises(ToolError, match="no linear"):
        imp(torch.nn.Sequential(torch.nn.ReLU()), _trainer(x, y), rounds=1, p=0.5, steps=5)


def test_lottery_ticket_tool_through_the_registry(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from malot.tools import get_registry

    x, y = _data(2, 300)
    data = tmp_path / "data.safetensors"
    save_file({"x": x, "y": y}, str(data))
    args = {"data": str(data), "out": str(tmp_path / "ticket.safetensors"), "widths": [16], "rounds": 2, "steps": 20}
    out = get_registry().run_sync("lottery_ticket", args, isolation="inline")
    assert out.sparsity_per_round[-1] == pytest.approx(0.75, abs=0.02)  # type: ignore[attr-defined]
    assert out.expected_sparsity == pytest.approx(0.75)  # type: ignore[attr-defined]
    assert out.random_reinit_test_accuracy is not None  # type: ignore[attr-defined]
    ticket, masks, extra = load_mlp(out.ticket)  # type: ignore[attr-defined]
    init, init_masks, _ = load_mlp(out.init)  # type: ignore[attr-defined]
    assert extra["rounds"] == 2 and set(masks) == {"0.weight", "2.weight"}
    trained = ticket.state_dict()
    assert any(not torch.equal(v, trained[k]) for k, v in init.state_dict().items())  # the ticket was trained
    for name, param in ticket.named_parameters():
        if name in masks:
            assert torch.equal(masks[name], init_masks[name])
            assert bool((param[~masks[name]] == 0).all())
    bad = tmp_path / "bad.safetensors"
    save_file({"x": torch.full((4, 6), float("nan")), "y": torch.zeros(4, dtype=torch.long)}, str(bad))
    with pytest.raises(ToolError, match="NaN"):
        get_registry().run_sync("lottery_ticket", {**args, "data": str(bad)}, isolation="inline")
    with pytest.raises(ToolError, match="does not exist"):
        get_registry().run_sync("lottery_ticket", {**args, "data": str(tmp_path / "no.npz")}, isolation="inline")
    empty = tmp_path / "empty.safetensors"
    save_file({"x": torch.zeros(0, 6), "y": torch.zeros(0, dtype=torch.long)}, str(empty))
    with pytest.raises(ToolError, match="holds 0 examples"):
        get_registry().run_sync("lottery_ticket", {**args, "data": str(empty)}, isolation="inline")
    with pytest.raises(ToolError, match="prune_fraction"):
        get_registry().run_sync("lottery_ticket", {**args, "prune_fraction": 1.5}, isolation="inline")
