"""make_peft: the unified form against peft's LoRA, the prefix identity (Eq. 7), frozen backbones, closed forms."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from malot_peft.core.apply import PeftSpec, apply_peft, load_adapter, save_adapter  # noqa: E402
from malot_peft.core.tiny import TinyTransformer  # noqa: E402
from malot_peft.core.unified import gated_prefix_attention, insert_delta, make_delta, prefix_attention  # noqa: E402
from malot_peft.unified_peft import make_peft_model, train_peft  # noqa: E402

from malot.errors import ToolError  # noqa: E402

FORMS = ["lora", "adapter", "parallel_adapter", "prefix", "mam"]


def _tiny(seed: int = 0) -> TinyTransformer:
    torch.manual_seed(seed)
    return TinyTransformer(12, d=16, layers=2, heads=2, ffn=32, max_len=16, out_dim=3)


def _data(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 12, (32, 8), generator=g)
    return ids, (ids[:, 0] % 3)


def test_unified_parallel_identity_form_equals_peft_lora_on_the_same_weights() -> None:
    base = _tiny()
    via_peft = apply_peft(copy.deepcopy(base), PeftSpec(form="lora", r=4, scale=2.0, backend="peft"))
    ours = apply_peft(copy.deepcopy(base), PeftSpec(form="lora", r=4, scale=2.0, backend="unified"))
    assert via_peft.trainable_count == ours.trainable_count == via_peft.closed_form == ours.closed_form
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for block in (0, 1):
            for proj in ("q", "v"):
                a = torch.randn(4, 16, generator=g)
                b = torch.randn(16, 4, generator=g)
                layer = via_peft.model.get_submodule(f"base_model.model.blocks.{block}.attn.{proj}")
                layer.lora_A["default"].weight.copy_(a)
                layer.lora_B["default"].weight.copy_(b)
                delta = ours.model.get_submodule(f"blocks.{block}.attn.{proj}.delta")
                delta.down.weight.copy_(a)
                delta.up.weight.copy_(b)
    ids, _ = _data()
    out_peft, out_ours = via_peft.model(ids), ours.model(ids)
    assert not torch.allclose(out_peft, base(ids), atol=1e-3)  # the LoRA weights matter
    torch.testing.assert_close(out_ours, out_peft, rtol=1e-6, atol=1e-6)


def test_zero_initialised_w_up_leaves_the_model_unchanged() -> None:
    base = _tiny()
    ids, _ = _data()
    for form in ("adapter", "parallel_adapter"):
        handle = apply_peft(copy.deepcopy(base), PeftSpec(form=form, r=4))
        assert torch.equal(handle.model(ids), base(ids))
    handle = apply_peft(copy.deepcopy(base), PeftSpec(form="lora", r=4, backend="unified"))
    assert torch.equal(handle.model(ids), base(ids))


def test_sequential_modifies_the_output_and_parallel_the_input() -> None:
    torch.manual_seed(0)
    layer = torch.nn.Linear(5, 5)
    delta = make_delta(5, 5, 2, fn="tanh", scale=3.0, zero_up=False)
    x = torch.randn(4, 5)
    seq = insert_delta(copy.deepcopy(layer), copy.deepcopy(delta), "sequential")
    par = insert_delta(copy.deepcopy(layer), copy.deepcopy(delta), "parallel")
    h = layer(x)
    torch.testing.assert_close(seq(x), h + 3.0 * delta.up(torch.tanh(delta.down(h))))
    torch.testing.assert_close(par(x), h + delta(x))


def test_prefix_attention_is_the_gated_parallel_form_of_eq_7() -> None:
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 5, 8, generator=g) for _ in range(3))
    p_k, p_v = torch.randn(3, 8, generator=g), torch.randn(3, 8, generator=g)
    gated, gate = gated_prefix_attention(q, k, v, p_k, p_v)
    torch.testing.assert_close(prefix_attention(q, k, v, p_k, p_v), gated, rtol=1e-5, atol=1e-6)
    assert bool(((gate > 0) & (gate < 1)).all())


def test_tiny_attention_with_prefix_matches_concatenated_attention() -> None:
    model = _tiny()
    attn = model.blocks[0].attn
    attn.add_prefix(3, std=1.0)
    x = torch.randn(2, 6, 16)
    heads, dh = 2, 8

    def split(t: torch.Tensor) -> torch.Tensor:
        return t.view(*t.shape[:-1], heads, dh).transpose(-3, -2)

    q, k, v = split(attn.q(x)), split(attn.k(x)), split(attn.v(x))
    pk, pv = split(attn.prefix_k), split(attn.prefix_v)  # (heads, l, dh)
    per_head = [prefix_attention(q[:, h], k[:, h], v[:, h], pk[h], pv[h]) for h in range(heads)]
    expected = attn.o(torch.stack(per_head, dim=1).transpose(1, 2).reshape(2, 6, 16))
    torch.testing.assert_close(attn(x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("form", FORMS)
def test_training_keeps_the_backbone_bit_identical_and_counts_match_the_closed_form(form: str) -> None:
    base = _tiny()
    handle = make_peft_model(base, PeftSpec(form=form, r=4, prefix_len=2))
    assert handle.trainable_count == handle.closed_form > 0
    ids, y = _data()

    def loss_fn(net: torch.nn.Module, step: int) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(net(ids), y)

    losses, same = train_peft(handle, loss_fn, steps=15, lr=1e-2)
    assert same
    assert losses[-1] < losses[0]
    assert all(p.grad is None for p in handle.backbone.values())


def test_closed_forms_by_hand_for_the_tiny_model() -> None:
    d, r, layers, ffn_targets = 16, 4, 2, 2
    assert apply_peft(_tiny(), PeftSpec(form="lora", r=r)).closed_form == layers * 2 * r * (d + d)
    assert apply_peft(_tiny(), PeftSpec(form="adapter", r=r)).closed_form == ffn_targets * (2 * r * d + r + d)
    assert apply_peft(_tiny(), PeftSpec(form="prefix", prefix_len=5)).closed_form == 5 * layers * 2 * d


@pytest.mark.parametrize("form", ["lora", "prefix", "mam"])
def test_peft_library_modules_on_a_hugging_face_llama(form: str, tiny_lm_folder: Path) -> None:
    from malot_peft.core.lm import load_causal_lm

    model = load_causal_lm(tiny_lm_folder)
    config = model.config
    handle = make_peft_model(model, PeftSpec(form=form, r=2, prefix_len=3))
    kv = config.num_key_value_heads * (config.hidden_size // config.num_attention_heads)
    prefix = 3 * config.num_hidden_layers * 2 * kv
    expected = {
        "lora": config.num_hidden_layers * 2 * ((config.hidden_size + config.hidden_size) + (config.hidden_size + kv)),
        "prefix": prefix,
        "mam": prefix + config.num_hidden_layers * (2 * 2 * config.hidden_size + 2 + config.hidden_size),
    }[form]
    assert handle.trainable_count == handle.closed_form == expected
    ids = torch.randint(4, 16, (4, 6))

    def loss_fn(net: torch.nn.Module, step: int) -> torch.Tensor:
        logits = net(input_ids=ids).logits
        return torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))

    losses, same = train_peft(handle, loss_fn, steps=5, lr=1e-2)
    assert same and losses[-1] < losses[0]


def test_adapter_round_trips_through_a_file(tmp_path: Path) -> None:
    handle = apply_peft(_tiny(), PeftSpec(form="parallel_adapter", r=3))
    with torch.no_grad():
        for p in handle.trainable.values():
            p.normal_()
    path = save_adapter(handle, tmp_path / "a.safetensors")
    ids, _ = _data()
    loaded = load_adapter(_tiny(), path)
    assert torch.equal(loaded.model(ids), handle.model(ids))
    with pytest.raises(ToolError, match="does not fit"):
        load_adapter(TinyTransformer(12, d=16, layers=3, heads=2, ffn=32, max_len=16, out_dim=3), path)
    with torch.no_grad():
        next(iter(handle.trainable.values())).fill_(float("inf"))
    with pytest.raises(ToolError, match="infinite"):
        load_adapter(_tiny(), save_adapter(handle, tmp_path / "inf.safetensors"))


def test_bad_configurations_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="custom"):
        PeftSpec(form="custom", fn="relu")
    with pytest.raises(ValueError, match="fixed by form"):
        PeftSpec(form="lora", insertion="sequential")
    with pytest.raises(ToolError, match="matches targets"):
        apply_peft(_tiny(), PeftSpec(form="custom", fn="relu", insertion="parallel", targets=["nonexistent"]))
    with pytest.raises(ToolError, match=r"nn\.Linear"):
        apply_peft(_tiny(), PeftSpec(form="lora", targets=["ffn"]))


def test_make_peft_tool_through_the_plugin_registry(tiny_lm_folder: Path, text_file: Path, tmp_path: Path) -> None:
    from malot_peft.core.lm import load_causal_lm

    from malot.tools import get_registry

    registry = get_registry()
    assert registry.get("make_peft").metadata.family == "peft"
    out = tmp_path / "mam.safetensors"
    args = {"model": str(tiny_lm_folder), "data": str(text_file), "out": str(out), "form": "mam", "r": 2}
    result = registry.run_sync("make_peft", {**args, "steps": 4, "prefix_len": 2}, isolation="inline").model_dump()
    assert result["backbone_bit_identical"] is True
    assert result["trainable_params"] == result["closed_form_params"]
    assert out.is_file()
    handle = load_adapter(load_causal_lm(tiny_lm_folder), out)
    assert handle.trainable_count == result["trainable_params"]
    empty = tmp_path / "empty.txt"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(ToolError, match="empty"):
        registry.run_sync("make_peft", {**args, "data": str(empty)}, isolation="inline")
    with pytest.raises(ToolError, match="safetensors"):
        registry.run_sync("make_peft", {**args, "out": str(tmp_path / "x.bin")}, isolation="inline")
    with pytest.raises(ToolError, match="custom"):
        registry.run_sync("make_peft", {**args, "form": "custom"}, isolation="inline")
