"""DAS: the bandit skips identity-like blocks first, the backbone stays frozen, skipped HF layers export and load."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from malot_sparse.das import drop_decoder_layers, finetune_adapters, make_adapters, skip_bandit, skipping  # noqa: E402

from malot.errors import ToolError  # noqa: E402


class _Block(torch.nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.inner = torch.nn.Linear(width, width)
        self.outer = torch.nn.Linear(width, width)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.outer(torch.relu(self.inner(h)))


class _ResNet(torch.nn.Module):
    def __init__(self, blocks: int = 5, width: int = 16, identity: tuple[int, ...] = ()) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = torch.nn.Linear(6, width)
        self.blocks = torch.nn.ModuleList(_Block(width) for _ in range(blocks))
        self.head = torch.nn.Linear(width, 3)
        with torch.no_grad():
            for b in self.blocks:
                b.outer.weight.mul_(3.0)
            for i in identity:  # a residual branch of zeros: the block is the identity
                self.blocks[i].outer.weight.zero_()
                self.blocks[i].outer.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        for block in self.blocks:
            h = block(h)
        return self.head(h)


def _loss(model: _ResNet):  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(3)
    x = torch.randn(64, 6, generator=g)
    target = model(x).detach().argmax(dim=1)
    return lambda step: torch.nn.functional.cross_entropy(model(x), target)


@pytest.mark.parametrize(("identity", "k"), [((2,), 1), ((0, 3), 2), ((4,), 1)])
def test_identity_like_blocks_are_skipped_first(identity: tuple[int, ...], k: int) -> None:
    model = _ResNet(identity=identity)
    adapters = make_adapters(5, 16, 0)
    result = skip_bandit(model.blocks, adapters, _loss(model), k=k, rounds=60, seed=1)
    assert result.skip == sorted(identity)
    others = [result.values[i] for i in range(5) if i not in identity and result.counts[i]]
    assert min(result.values[i] for i in identity) > max(others)
    if k == 1:  # a set holding only an identity block costs nothing: its value is the dense reward exactly
        assert result.values[identity[0]] == pytest.approx(0.0, abs=1e-6)


def test_the_backbone_stays_frozen_and_blocks_are_restored() -> None:
    model = _ResNet()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for p in model.parameters():
        p.requires_grad_(False)
    adapters = make_adapters(5, 16, 4)
    originals = list(model.blocks)
    x = torch.randn(4, 6)
    with skipping(model.blocks, adapters, [1, 3]):
        assert model.blocks[1] is adapters[1]
        skipped_identity = model(x)  # zero-initialised W_up: each adapter starts as the identity
    with skipping(model.blocks, make_adapters(5, 16, 0), [1, 3]):
        assert torch.allclose(model(x), skipped_identity)
    result = skip_bandit(model.blocks, adapters, _loss(model), k=2, rounds=10, adapter_lr=0.01)
    losses = finetune_adapters(model.blocks, adapters, result.skip, _loss(model), steps=30, lr=0.01)
    assert losses[-1] < losses[0]
    assert list(model.blocks) == originals
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_bad_arguments_are_clear_errors() -> None:
    model = _ResNet()
    adapters = make_adapters(5, 16, 0)
    with pytest.raises(ToolError, match="k=6"):
        skip_bandit(model.blocks, adapters, _loss(model), k=6)
    with pytest.raises(ToolError, match="no block"):
        skip_bandit(model.blocks, adapters, _loss(model), k=1, candidates=[])
    with pytest.raises(ToolError, match="round"):
        skip_bandit(model.blocks, adapters, _loss(model), k=1, rounds=0)


def test_dropping_decoder_layers_gives_a_smaller_model_with_the_skipped_outputs(tiny_lm: Path, tmp_path: Path) -> None:
    from malot_sparse.core.causal_lm import decoder_layers
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_lm)).eval()
    ids = torch.tensor([[2, 5, 6, 7, 8, 9]])
    with skipping(decoder_layers(model), make_adapters(3, 32, 0), [0]), torch.no_grad():
        expected = model(input_ids=ids).logits
    drop_decoder_layers(model, [0])
    model.save_pretrained(str(tmp_path / "small"))
    small = AutoModelForCausalLM.from_pretrained(str(tmp_path / "small")).eval()
    assert small.config.num_hidden_layers == 2
    with torch.no_grad():
        assert torch.allclose(small(input_ids=ids).logits, expected, atol=1e-5)
    generated = small.generate(ids, max_new_tokens=4, do_sample=False)  # the KV cache works after renumbering
    assert generated.shape == (1, 10)


@pytest.mark.slow
def test_das_skip_tool_through_the_registry(tiny_lm: Path, lm_texts: Path, tmp_path: Path) -> None:
    from malot_sparse.core.causal_lm import lm_loss
    from malot_sparse.das import load_das_model
    from transformers import AutoModelForCausalLM

    from malot.tools import get_registry

    args = {
        "model": str(tiny_lm),
        "data": str(lm_texts),
        "out": str(tmp_path / "das"),
        "rounds": 6,
        "finetune_steps": 6,
        "batch_size": 2,
    }
    out = get_registry().run_sync("das_skip", args, isolation="inline")
    assert len(out.skipped_layers) == 1 and out.skipped_layers[0] != 0  # type: ignore[attr-defined]
    assert out.adapter_parameters < out.block_parameters_removed  # type: ignore[attr-defined]
    model, tokenizer = load_das_model(tmp_path / "das")
    enc = tokenizer(["theorem add zero := by simp ."], return_tensors="pt")
    assert torch.isfinite(lm_loss(model, enc["input_ids"], enc["attention_mask"]))
    plain_args = {**args, "adapter_dim": 0, "out": str(tmp_path / "p")}
    plain = get_registry().run_sync("das_skip", plain_args, isolation="inline")
    small = AutoModelForCausalLM.from_pretrained(str(tmp_path / "p"))
    assert small.config.num_hidden_layers == 2 and plain.adapter_parameters == 0  # type: ignore[attr-defined]
    with pytest.raises(ToolError, match="would skip all"):
        get_registry().run_sync("das_skip", {**args, "k": 3}, isolation="inline")
