"""MaskLLM: exact N:M structure, frozen weights, the prior, and the learn_nm_mask tool on a tiny Llama."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from malot_sparse.core.nm import (  # noqa: E402
    candidate_masks,
    check_nm,
    magnitude_nm_mask,
    saliency_nm_mask,
    sparsegpt_saliency,
)
from malot_sparse.maskllm import learn_nm_masks  # noqa: E402

from malot.errors import ToolError  # noqa: E402


def _mlp(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))


def _mse(model: torch.nn.Module, seed: int = 1):  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 8, generator=g)
    y = torch.randn(64, 4, generator=g)
    return lambda net, step: torch.nn.functional.mse_loss(net(x), y)


@pytest.mark.parametrize(("n", "m", "count"), [(2, 4, 6), (1, 4, 4), (4, 8, 70), (4, 4, 1)])
def test_candidate_masks_enumerate_every_n_of_m_choice(n: int, m: int, count: int) -> None:
    cands = candidate_masks(n, m)
    assert cands.shape == (count, m)
    assert (cands.sum(dim=1) == n).all()
    assert len({tuple(r.tolist()) for r in cands}) == count


def test_learned_masks_keep_exactly_n_per_group_and_the_weights_are_frozen() -> None:
    model = _mlp()
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    result = learn_nm_masks(model, _mse(model), n=2, m=4, steps=20, lr=0.1, prior_strength=0.5, apply=False)
    assert set(result.masks) == {"0", "2"}
    for mask in result.masks.values():
        assert check_nm(mask, 2, 4)
        assert int(mask.sum()) == mask.numel() // 2
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key  # bit-identical: only the mask logits were trained
    assert all(p.requires_grad for p in model.parameters())  # trainability restored
    assert not any("parametrizations" in k for k in model.state_dict())
    applied = _mlp()
    result2 = learn_nm_masks(applied, _mse(applied), n=2, m=4, steps=20, lr=0.1, prior_strength=0.5, apply=True)
    assert torch.equal(applied[0].weight, before["0.weight"] * result2.masks["0"])
    assert torch.equal(applied[0].bias, before["0.bias"])  # biases are never masked


def test_a_strong_prior_returns_the_prior_mask_and_zero_steps_too() -> None:
    model = _mlp()
    strong = learn_nm_masks(model, _mse(model), steps=15, lr=0.05, prior_strength=1000.0, apply=False)
    for name, mask in strong.masks.items():
        assert torch.equal(mask, magnitude_nm_mask(dict(model.named_modules())[name].weight, 2, 4))
    idle = learn_nm_masks(model, _mse(model), steps=0, apply=False)
    assert idle.changed_from_prior() == 0.0 and idle.losses == []


def test_learning_moves_the_mask_away_from_a_misleading_magnitude_prior() -> None:
    # One linear layer y = x·wᵀ where the informative inputs carry large activations but small weights.
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 4, generator=g) * torch.tensor([10.0, 10.0, 0.01, 0.01])
    layer = torch.nn.Linear(4, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.5, -0.4, 3.0, 2.0]]))
    y = layer(x).detach()
    model = torch.nn.Sequential(layer)
    loss = lambda net, step: torch.nn.functional.mse_loss(net(x), y)  # noqa: E731
    result = learn_nm_masks(model, loss, steps=150, lr=0.1, prior_strength=1.0, apply=False)
    assert result.priors["0"].tolist() == [[False, False, True, True]]  # magnitude keeps the big weights
    assert result.masks["0"].tolist() == [[True, True, False, False]]  # the learned mask keeps what matters
    assert result.losses[-1] < result.losses[0]
    obs = saliency_nm_mask(sparsegpt_saliency(layer.weight, x), 2, 4)
    assert obs.tolist() == [[True, True, False, False]]  # the SparseGPT saliency sees the activations too


def test_bad_inputs_are_clear_errors() -> None:
    model = _mlp()
    with pytest.raises(ToolError, match="0 < N <= M"):
        learn_nm_masks(model, _mse(model), n=5, m=4, steps=1)
    with pytest.raises(ToolError, match="multiple of M"):
        learn_nm_masks(torch.nn.Sequential(torch.nn.Linear(6, 3)), _mse(model), steps=1)
    with pytest.raises(ToolError, match="multiple of M"):
        check_nm(torch.ones(2, 6), 2, 4)
    broken = _mlp()
    with torch.no_grad():
        broken[0].weight[0, 0] = float("nan")
    with pytest.raises(ToolError, match="NaN"):
        learn_nm_masks(broken, _mse(broken), steps=1)


@pytest.mark.slow
def test_learn_nm_mask_tool_writes_a_loadable_2_4_checkpoint(tiny_lm: Path, lm_texts: Path, tmp_path: Path) -> None:
    from compressed_tensors.config import SparsityCompressionConfig
    from transformers import AutoModelForCausalLM

    from malot.tools import get_registry

    out = tmp_path / "masked"
    args = {"model": str(tiny_lm), "data": str(lm_texts), "out": str(out), "steps": 4, "batch_size": 2}
    result = get_registry().run_sync("learn_nm_mask", args, isolation="inline")
    assert result.exactly_n_per_group and result.candidates == 6  # type: ignore[attr-defined]
    assert result.sparsity == pytest.approx(0.5)  # type: ignore[attr-defined]
    base = AutoModelForCausalLM.from_pretrained(str(tiny_lm))
    masked = AutoModelForCausalLM.from_pretrained(str(out))
    config = SparsityCompressionConfig.model_validate(json.loads((out / "sparsity_config.json").read_text()))
    assert config.sparsity_structure == "2:4" and config.format == "dense"
    base_modules = dict(base.named_modules())
    checked = 0
    for name, module in masked.named_modules():
        if isinstance(module, torch.nn.Linear) and name in config.targets:
            original = base_modules[name].weight
            assert check_nm(module.weight != 0, 2, 4)
            kept = module.weight != 0
            assert torch.equal(module.weight[kept], original[kept])  # survivors keep their frozen values
            checked += 1
    assert checked == 3 * 7  # q, k, v, o, gate, up, down in each of the 3 blocks
    assert torch.equal(masked.lm_head.weight, base.lm_head.weight)
    with pytest.raises(ToolError, match="larger than m"):
        get_registry().run_sync("learn_nm_mask", {**args, "n": 5}, isolation="inline")
    with pytest.raises(ToolError, match="does not exist"):
        get_registry().run_sync("learn_nm_mask", {**args, "data": str(tmp_path / "none.txt")}, isolation="inline")


def test_sparsegpt_prior_from_recorded_inputs_and_the_weight_regulariser() -> None:
    from malot_sparse.maskllm import nm_linear_layers, record_linear_inputs

    model = _mlp(2)
    layers = nm_linear_layers(model, 4)
    x = torch.randn(128, 8, generator=torch.Generator().manual_seed(5)) * torch.linspace(0.1, 3.0, 8)
    calibration = record_linear_inputs(model, layers, lambda: model(x))
    assert calibration["0"].shape == (128, 8) and calibration["2"].shape == (128, 16)
    strong = learn_nm_masks(
        model, _mse(model), steps=5, prior="sparsegpt", prior_strength=1000.0, calibration=calibration, apply=False
    )
    for name, layer in layers.items():
        expected = saliency_nm_mask(sparsegpt_saliency(layer.weight, calibration[name]), 2, 4)
        assert torch.equal(strong.masks[name], expected)
    regularised = learn_nm_masks(model, _mse(model), steps=10, weight_reg=0.1, prior_strength=0.1, apply=False)
    assert all(check_nm(mask, 2, 4) for mask in regularised.masks.values())
    with pytest.raises(ToolError, match="calibration"):
        learn_nm_masks(model, _mse(model), steps=1, prior="sparsegpt")
