"""LST, UniPT and SHERL: no gradient reaches the backbone (hooks), frozen weights, the papers' exact identities."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from malot_peft.core.backbone import GradientProbe, LayeredBackbone, frozen_states, layered  # noqa: E402
from malot_peft.core.side import SideModule, train_side  # noqa: E402
from malot_peft.core.tiny import TinyTransformer  # noqa: E402
from malot_peft.ladder import ladder_side_network  # noqa: E402
from malot_peft.sherl import anti_redundancy_weights, sherl_network  # noqa: E402
from malot_peft.unipt import unipt_network  # noqa: E402

from malot.errors import ToolError  # noqa: E402

BUILDERS: dict[str, Callable[[LayeredBackbone], SideModule]] = {
    "lst": lambda b: ladder_side_network(b, reduction=4),
    "unipt": lambda b: unipt_network(b, reduction=4),
    "sherl": lambda b: sherl_network(b, late_layers=1, reduction=4),
    "sherl_early_only": lambda b: sherl_network(b, late_layers=0, reduction=4),
}


def _tiny(task: str = "classify") -> TinyTransformer:
    torch.manual_seed(0)
    return TinyTransformer(12, d=16, layers=3, heads=2, ffn=32, max_len=16, out_dim=3, task=task)  # type: ignore[arg-type]


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(0, 12, (32, 8), generator=torch.Generator().manual_seed(1))
    return ids, ids[:, 0] % 3


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_no_gradient_reaches_the_backbone_and_it_stays_bit_identical(name: str) -> None:
    model = _tiny()
    ids, y = _data()
    side = BUILDERS[name](layered(model))
    torch.testing.assert_close(side(ids), model(ids))  # zero-initialised / closed gate: starts at the backbone
    run = train_side(side, lambda net, step: torch.nn.functional.cross_entropy(net(ids), y), steps=12, lr=1e-2)
    assert run.no_backbone_gradient, run.probe
    assert run.backbone_bit_identical
    assert run.losses[-1] < run.losses[0]
    assert all(not p.requires_grad for p in model.parameters())
    assert not any(n.startswith("backbone") for n in side.state_dict())  # the backbone is not saved with the side


def test_the_probe_catches_a_method_that_backpropagates_into_the_backbone() -> None:
    model = _tiny()
    backbone = layered(model)

    class Leaky(SideModule):
        def __init__(self) -> None:
            super().__init__(backbone)
            self.bias = torch.nn.Parameter(torch.zeros(3))

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            h = backbone.embed(ids)
            for i in range(backbone.num_layers):
                h = backbone.layer(i, h)  # autograd on: the wrong way
            return backbone.readout(h) + self.bias

    ids, y = _data()
    with pytest.warns(UserWarning, match="no inputs require gradients"):  # torch notes the embedding is frozen
        run = train_side(Leaky(), lambda net, step: torch.nn.functional.cross_entropy(net(ids), y), steps=1, lr=1e-2)
    assert not run.no_backbone_gradient
    assert run.probe.param_hits and run.probe.module_hits


def test_lst_ladder_recurrence_with_open_and_closed_gates() -> None:
    model = _tiny()
    backbone = layered(model)
    side = ladder_side_network(backbone, reduction=4)
    ids, _ = _data()
    states = frozen_states(backbone, ids)
    with torch.no_grad():
        side.up.weight.normal_()
        side.alpha.fill_(1e4)  # μ = 1: every ladder passes the downsampled backbone state only
        expected = backbone.readout(states[-1] + side.up(side.downs[-1](states[-1])))
        torch.testing.assert_close(side(ids), expected)
        side.alpha.fill_(-1e4)  # μ = 0: a plain side transformer over the downsampled embeddings
        h = side.downs[0](states[0])
        for block in side.blocks:
            h = block(h)
        torch.testing.assert_close(side(ids), backbone.readout(states[-1] + side.up(h)))
    assert bool(((side.gates() >= 0) & (side.gates() <= 1)).all())


def test_unipt_confidences_sum_to_one_over_layers() -> None:
    side = unipt_network(layered(_tiny("lm")), reduction=4)
    ids, _ = _data()
    side(ids)
    conf = side.last_confidence
    assert conf is not None and conf.shape[0] == 2  # three layers: two interact with the anchor
    torch.testing.assert_close(conf.sum(0), torch.ones_like(conf[0]))


def test_unipt_interaction_is_the_l1_normalised_relu_attention_plus_identity() -> None:
    side = unipt_network(layered(_tiny()), reduction=4)
    anchor, feats = torch.randn(1, 3, 4), torch.randn(1, 3, 4)
    sim = torch.relu(anchor @ feats.transpose(-1, -2))
    expected = (sim / sim.sum(-1, keepdim=True).clamp_min(1e-8) + torch.eye(3)) @ feats  # an all-zero row stays 0
    torch.testing.assert_close(side.interact(anchor, feats), expected, rtol=1e-5, atol=1e-6)


def test_unipt_interaction_is_causal_for_language_models() -> None:
    side = unipt_network(layered(_tiny("lm")), reduction=4)
    anchor, feats = torch.randn(1, 5, 4), torch.randn(1, 5, 4)
    changed = feats.clone()
    changed[:, -1] += 10.0  # only the last position changes
    torch.testing.assert_close(side.interact(anchor, feats)[:, :-1], side.interact(anchor, changed)[:, :-1])
    before = side.confidence(anchor, [feats, feats * 2])
    after = side.confidence(anchor, [changed, changed * 2])
    torch.testing.assert_close(before[:, :, :-1], after[:, :, :-1])  # running-mean pooling: no look-ahead
    torch.testing.assert_close(before.sum(0), torch.ones_like(before[0]))


def test_sherl_weights_sum_to_one_and_a_duplicated_layer_is_not_doubled() -> None:
    basis = torch.eye(4)
    feats = torch.stack([basis[0], basis[1], basis[2]]).view(3, 1, 1, 4)  # orthogonal layers
    gates = torch.tensor([0.5, 1.0, 2.0]).view(3, 1, 1, 1)
    w = anti_redundancy_weights(feats, gates)
    torch.testing.assert_close(w.sum(0), torch.ones(1, 1, 1))
    dup_feats = torch.cat([feats, feats[1:2]])  # layer 1 appears twice
    dup_gates = torch.cat([gates, gates[1:2]])
    w_dup = anti_redundancy_weights(dup_feats, dup_gates)
    torch.testing.assert_close(w_dup.sum(0), torch.ones(1, 1, 1))
    torch.testing.assert_close(w_dup[1] + w_dup[3], w[1])  # the copies split the layer's weight
    torch.testing.assert_close(w_dup[0], w[0])
    torch.testing.assert_close(w_dup[2], w[2])
    aggregate = (w * feats).sum(0)
    torch.testing.assert_close((w_dup * dup_feats).sum(0), aggregate)


def test_sherl_late_route_backpropagates_through_late_layers_only() -> None:
    model = _tiny()
    backbone = layered(model)
    side = sherl_network(backbone, late_layers=2, reduction=4)
    probe = GradientProbe()
    layers = {f"layer{i}": backbone.layer_module(i) for i in range(3)}
    ids, y = _data()
    with probe.watch(model, layers):
        torch.nn.functional.cross_entropy(side(ids), y).backward()
    assert probe.module_hits == {"layer1", "layer2"}  # the late route; layer 0 ran without autograd
    assert not probe.param_hits and all(p.grad is None for p in model.parameters())
    assert side.gate.grad is not None


def test_bad_settings_are_clear_errors() -> None:
    backbone = layered(_tiny())
    with pytest.raises(ToolError, match="must divide"):
        ladder_side_network(backbone, reduction=5)
    with pytest.raises(ToolError, match="late_layers"):
        sherl_network(backbone, late_layers=3)
    with pytest.raises(ToolError, match="temperature"):
        ladder_side_network(backbone, temperature=0.0)
    one = TinyTransformer(12, d=16, layers=1, heads=2, ffn=32, out_dim=3)
    with pytest.raises(ToolError, match="two layers"):
        unipt_network(layered(one), reduction=4)
    with pytest.raises(ToolError, match="Llama"):
        layered(torch.nn.Linear(2, 2))


def test_frozen_states_of_a_hugging_face_llama_match_its_hidden_states(tiny_lm_folder: Path) -> None:
    from malot_peft.core.lm import load_causal_lm

    model = load_causal_lm(tiny_lm_folder)
    ids = torch.randint(4, 16, (2, 6))
    backbone = layered(model)
    states = frozen_states(backbone, ids)
    reference = model(input_ids=ids, output_hidden_states=True)
    for mine, theirs in zip(states[:-1], reference.hidden_states[:-1], strict=True):
        torch.testing.assert_close(mine, theirs)
    torch.testing.assert_close(backbone.readout(states[-1]), reference.logits)


@pytest.mark.parametrize(
    ("tool_name", "extra"), [("ladder_side_tune", {}), ("unipt", {}), ("sherl", {"late_layers": 1})]
)
def test_side_tools_through_the_plugin_registry(
    tool_name: str, extra: dict[str, int], tiny_lm_folder: Path, text_file: Path, tmp_path: Path
) -> None:
    from malot.tools import get_registry

    registry = get_registry()
    out = tmp_path / "side.safetensors"
    args = {"model": str(tiny_lm_folder), "data": str(text_file), "out": str(out), "reduction": 4, "steps": 3}
    result = registry.run_sync(tool_name, {**args, **extra}, isolation="inline").model_dump()
    assert result["backbone_bit_identical"] is True
    assert result["no_backbone_gradient"] is True
    assert 0 < result["trainable_params"] < result["backbone_params"]
    assert result["activation_bytes_side"] > 0 and result["activation_bytes_full_ft"] > 0
    assert out.is_file()
    with pytest.raises(ToolError, match="safetensors"):
        registry.run_sync(tool_name, {**args, "out": str(tmp_path / "x.pt")}, isolation="inline")
    with pytest.raises(ToolError, match=r"config\.json"):
        registry.run_sync(tool_name, {**args, "model": str(tmp_path)}, isolation="inline")
