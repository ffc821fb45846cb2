"""IDM: selection is exactly the top-k entropy, patch mixing swaps half the patches, adaptation runs end to end."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from malot_data.core.nets import accuracy, make_mlp, train_classifier
from malot_data.idm_select import entropy_rank, idm_adapt, info_max_loss, patch_mix, prototype_pseudo_labels

from malot.errors import ToolError
from malot.tools import tool_of
from malot.tools.registry import ToolRegistry


def test_selection_is_the_top_k_entropy() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 4)) * rng.uniform(0.1, 5, size=(50, 1))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    h = -(probs * np.log(probs)).sum(1)
    for k in (1, 7, 50):
        selected, ent = entropy_rank(probs, k)
        assert selected == sorted(range(50), key=lambda i: -h[i])[:k]
        assert np.allclose(ent, h)
    tied, _ = entropy_rank(np.full((4, 2), 0.5), 2)
    assert tied == [0, 1]


def test_patch_mix_takes_half_the_patches_from_each_side() -> None:
    g = torch.Generator().manual_seed(0)
    src, tgt = torch.zeros(5, 64), torch.ones(5, 64)
    mixed, lam = patch_mix(src, tgt, (8, 8), 2, g)
    assert torch.equal(lam, torch.full((5,), 0.5))
    assert bool(((mixed == 0) | (mixed == 1)).all()) and torch.equal(mixed.mean(dim=1), torch.full((5,), 0.5))
    for row in mixed.view(5, 8, 8):  # every 4×4 patch comes whole from one side
        for i in (0, 4):
            for j in (0, 4):
                assert row[i : i + 4, j : j + 4].unique().numel() == 1
    strip, _ = patch_mix(torch.zeros(2, 12), torch.ones(2, 12), (1, 12), 4, g)
    assert torch.equal(strip.sum(dim=1), torch.full((2,), 6.0))
    with pytest.raises(ToolError, match="grid"):
        patch_mix(src, tgt, (8, 8), 3, g)


def test_info_max_and_prototypes() -> None:
    confident_diverse = torch.eye(3) * 20
    collapsed = torch.tensor([[20.0, 0, 0]] * 3)
    assert float(info_max_loss(confident_diverse)) == pytest.approx(-np.log(3), abs=1e-4)
    assert float(info_max_loss(collapsed)) > float(info_max_loss(confident_diverse)) + 1
    protos = torch.tensor([[1.0, 0], [0, 1.0]])
    assert prototype_pseudo_labels(torch.tensor([[3.0, 1], [0.1, 2]]), protos).tolist() == [0, 1]


def _domains(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    protos = torch.randn(3, 16, generator=g) * 2
    ys, yt = torch.randint(3, (150,), generator=g), torch.randint(3, (150,), generator=g)
    xs = protos[ys] + 0.5 * torch.randn(150, 16, generator=g)
    xt = 0.7 * protos[yt] + 0.5 + 0.5 * torch.randn(150, 16, generator=g)
    return xs, ys, xt, yt


def test_adaptation_selects_by_entropy_and_keeps_the_source_task() -> None:
    xs, ys, xt, _yt = _domains()
    model = make_mlp(16, 3, 16, seed=0)
    train_classifier(model, xs, ys, steps=80)
    adapted = copy.deepcopy(model)
    result = idm_adapt(adapted, xs, ys, xt, 4, image_shape=(4, 4), grid=2, steps=20)
    with torch.no_grad():
        probs = torch.softmax(model(xt), dim=1).numpy()
    assert result.selected == entropy_rank(probs, 4)[0]
    assert all(np.isfinite(result.losses)) and len(result.losses) == 20
    assert accuracy(adapted, xs, ys) > 0.9
    rand = idm_adapt(copy.deepcopy(model), xs, ys, xt, 4, image_shape=(4, 4), steps=1, selection="random")
    assert len(set(rand.selected)) == 4


def test_tool_ranks_or_adapts(tmp_path: Path) -> None:
    import malot_data.idm_select as module

    xs, ys, xt, _ = _domains(1)
    np.savez(tmp_path / "d.npz", xs=xs.numpy(), ys=ys.numpy(), xt=xt.numpy(), logits=np.log(np.full((5, 2), 0.5)))
    registry = ToolRegistry()
    t = tool_of(module.idm_select)
    assert t is not None
    registry.register(t)
    ranked = registry.run_sync("idm_select", {"k": 2, "outputs": f"{tmp_path}/d.npz:logits"}).model_dump()
    assert ranked["selected"] == [0, 1] and not ranked["adapted"]
    adapted = registry.run_sync(
        "idm_select",
        {
            "k": 3,
            "source_data": f"{tmp_path}/d.npz:xs",
            "source_labels": f"{tmp_path}/d.npz:ys",
            "pool": f"{tmp_path}/d.npz:xt",
            "image_height": 4,
            "steps": 5,
            "source_steps": 20,
            "out": str(tmp_path / "pred.npz"),
        },
    ).model_dump()
    assert adapted["adapted"] and len(adapted["selected"]) == 3
    assert np.load(tmp_path / "pred.npz")["probs"].shape == (150, 3)
    with pytest.raises(ToolError, match="k=9"):
        registry.run_sync("idm_select", {"k": 9, "outputs": f"{tmp_path}/d.npz:logits"})
    with pytest.raises(ToolError, match="needs pool"):
        registry.run_sync(
            "idm_select", {"k": 1, "source_data": f"{tmp_path}/d.npz:xs", "source_labels": f"{tmp_path}/d.npz:ys"}
        )
    with pytest.raises(ToolError, match="sum to 1"):
        registry.run_sync("idm_select", {"k": 1, "outputs": f"{tmp_path}/d.npz:xs", "outputs_kind": "probs"})
