"""ScaLearn: one-hot scaling reproduces a source adapter, closed-form counts per variant, only ω trains."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from malot_peft.core.apply import PeftSpec, apply_peft, save_adapter  # noqa: E402
from malot_peft.core.combine import combination_param_count  # noqa: E402
from malot_peft.core.tiny import TinyTransformer  # noqa: E402
from malot_peft.scalearn import scalearn_model, train_combination  # noqa: E402

from malot.errors import ToolError  # noqa: E402

D, LAYERS = 16, 2


def _tiny() -> TinyTransformer:
    torch.manual_seed(0)
    return TinyTransformer(12, d=D, layers=LAYERS, heads=2, ffn=32, max_len=16, out_dim=3)


def _ids() -> torch.Tensor:
    return torch.randint(0, 12, (8, 6), generator=torch.Generator().manual_seed(1))


def _sources(tmp_path: Path, form: str = "adapter", n: int = 3, **spec: object) -> tuple[list[Path], list]:  # type: ignore[type-arg]
    paths, handles = [], []
    for i in range(n):
        handle = apply_peft(_tiny(), PeftSpec(form=form, r=4, **spec))  # type: ignore[arg-type]
        g = torch.Generator().manual_seed(10 + i)
        with torch.no_grad():
            for p in handle.trainable.values():
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        paths.append(save_adapter(handle, tmp_path / f"{form}{i}.safetensors"))
        handles.append(handle)
    return paths, handles


@pytest.mark.parametrize("mode", ["scalearn", "scalearn++", "uniform", "uniform++"])
@pytest.mark.parametrize("form", ["adapter", "parallel_adapter"])
def test_one_hot_omega_reproduces_source_adapter_j_exactly(tmp_path: Path, mode: str, form: str) -> None:
    paths, handles = _sources(tmp_path, form)
    handle = scalearn_model(_tiny(), paths, mode)
    ids = _ids()
    for j in range(3):
        with torch.no_grad():
            for name, p in handle.trainable.items():
                assert name.endswith("omega")
                p.zero_()
                p[j] = 1.0
        assert torch.equal(handle.model(ids), handles[j].model(ids))


@pytest.mark.parametrize("mode", ["scalearn", "scalearn++", "uniform", "uniform++", "average", "fusion"])
def test_parameter_counts_match_the_closed_form_per_variant(tmp_path: Path, mode: str) -> None:
    paths, _ = _sources(tmp_path)
    handle = scalearn_model(_tiny(), paths, mode)
    assert handle.trainable_count == handle.closed_form == combination_param_count(mode, LAYERS, 3, D)
    by_hand = {"scalearn": 2 * 3 * 16, "scalearn++": 6, "uniform": 48, "uniform++": 3, "average": 0}
    by_hand["fusion"] = 2 * 3 * (16 * 16 + 16)
    assert handle.closed_form == by_hand[mode]


def test_average_mode_is_the_mean_of_the_sources(tmp_path: Path) -> None:
    paths, handles = _sources(tmp_path, "parallel_adapter", n=2)
    avg = scalearn_model(_tiny(), paths, "average")
    x = torch.randn(4, 6, D)
    block = avg.model.blocks[0].ffn
    h = block.base(x)
    d0 = handles[0].model.blocks[0].ffn.delta(x)
    d1 = handles[1].model.blocks[0].ffn.delta(x)
    torch.testing.assert_close(block(x), h + (d0 + d1) / 2)


def test_only_omega_trains_and_backbone_and_sources_stay_bit_identical(tmp_path: Path) -> None:
    paths, _ = _sources(tmp_path)
    handle = scalearn_model(_tiny(), paths, "scalearn")
    ids = _ids()
    y = ids[:, 0] % 3
    start = {n: p.detach().clone() for n, p in handle.trainable.items()}

    def loss_fn(net: torch.nn.Module, step: int) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(net(ids), y)

    losses, same = train_combination(handle, loss_fn, steps=10, lr=0.05)
    assert same and losses[-1] < losses[0]
    assert any(not torch.equal(p.detach(), start[n]) for n, p in handle.trainable.items())


def test_peft_lora_sources_convert_exactly_to_the_unified_form(tmp_path: Path) -> None:
    paths, handles = _sources(tmp_path, "lora", n=1, scale=2.0)
    combined = scalearn_model(_tiny(), paths, "scalearn++")
    with torch.no_grad():
        next(iter(combined.trainable.values())).fill_(1.0)
    ids = _ids()
    torch.testing.assert_close(combined.model(ids), handles[0].model(ids), rtol=1e-6, atol=1e-6)


def test_bad_sources_are_clear_errors(tmp_path: Path) -> None:
    adapters, _ = _sources(tmp_path, "adapter", n=1)
    parallel, _ = _sources(tmp_path, "parallel_adapter", n=1)
    prefix, _ = _sources(tmp_path, "prefix", n=1, prefix_len=2)
    with pytest.raises(ToolError, match="another insertion"):
        scalearn_model(_tiny(), [adapters[0], parallel[0]])
    with pytest.raises(ToolError, match="prefix adapter"):
        scalearn_model(_tiny(), prefix)
    with pytest.raises(ToolError, match="does not exist"):
        scalearn_model(_tiny(), [tmp_path / "missing.safetensors"])
    with pytest.raises(ToolError, match="no module"):
        scalearn_model(TinyTransformer(12, d=D, layers=1, heads=2, ffn=32, out_dim=3), adapters + adapters)
    with pytest.raises(ToolError, match="unknown combination mode"):
        scalearn_model(_tiny(), adapters, "median")
    handle = apply_peft(_tiny(), PeftSpec(form="adapter", r=4))
    with torch.no_grad():
        next(iter(handle.trainable.values())).fill_(float("nan"))
    broken = save_adapter(handle, tmp_path / "nan.safetensors")
    with pytest.raises(ToolError, match="NaN"):
        scalearn_model(_tiny(), [broken])


def test_a_non_finite_training_loss_stops_with_a_clear_error() -> None:
    from malot_peft.core.train import train_params

    param = torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(ToolError, match="loss became nan"):
        train_params([param], lambda step: param.sum() * float("nan"), steps=3, lr=0.1)


def test_scalearn_tool_through_the_plugin_registry(tiny_lm_folder: Path, text_file: Path, tmp_path: Path) -> None:
    from malot.tools import get_registry

    registry = get_registry()
    sources = []
    for i in range(2):
        out = tmp_path / f"src{i}.safetensors"
        args = {"model": str(tiny_lm_folder), "data": str(text_file), "out": str(out), "form": "adapter"}
        registry.run_sync("make_peft", {**args, "r": 2, "steps": 2, "seed": i}, isolation="inline")
        sources.append(str(out))
    omega = tmp_path / "omega.safetensors"
    args = {"model": str(tiny_lm_folder), "adapters": sources, "data": str(text_file), "out": str(omega)}
    result = registry.run_sync("scalearn", {**args, "mode": "scalearn", "steps": 3}, isolation="inline").model_dump()
    assert result["frozen_bit_identical"] is True
    assert result["trainable_params"] == result["closed_form_params"] == 3 * 2 * 32
    assert len(result["mean_omega_per_source"]) == 2 and omega.is_file()
    with pytest.raises(ToolError, match="safetensors"):
        registry.run_sync("scalearn", {**args, "out": str(tmp_path / "w.pt")}, isolation="inline")
