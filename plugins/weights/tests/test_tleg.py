"""TLEG: linear expansion of a learngene, its least-squares fit, the auxiliary stack, and the tool."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from malot_weights.tleg import (  # noqa: E402
    TlegExpandInput,
    build_expansion_stack,
    distill_learngene,
    expand_learngene,
    fit_learngene,
    tleg_expand,
)
from malot_weights.tool_io import load_weights, save_weights  # noqa: E402


def _genes() -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    a = {"w": torch.randn(4, 3, generator=g), "b": torch.randn(4, generator=g)}
    b = {"w": torch.randn(4, 3, generator=g), "b": torch.randn(4, generator=g)}
    return a, b


@pytest.mark.parametrize("depth", [1, 2, 3, 7])
def test_first_layer_is_gene_a_last_is_a_plus_b_and_layers_are_linear_in_depth(depth: int) -> None:
    a, b = _genes()
    layers = expand_learngene(a, b, depth)
    assert len(layers) == depth
    assert all(torch.equal(layers[0][n], a[n]) for n in a)
    if depth > 1:
        assert all(torch.allclose(layers[-1][n], a[n] + b[n]) for n in a)
        for i, layer in enumerate(layers):
            assert torch.allclose(layer["w"], a["w"] + i / (depth - 1) * b["w"])


def test_fit_recovers_a_learngene_from_its_expansion() -> None:
    a, b = _genes()
    fa, fb = fit_learngene(expand_learngene(a, b, 5))
    assert all(torch.allclose(fa[n], a[n], atol=1e-5) and torch.allclose(fb[n], b[n], atol=1e-5) for n in a)


def test_auxiliary_stack_trains_only_the_two_genes_and_expands_to_its_own_layers() -> None:
    torch.manual_seed(0)
    template = torch.nn.Sequential(torch.nn.Linear(6, 6), torch.nn.Tanh())
    stack = build_expansion_stack(template, 4, b_init_scale=0.01)
    head = torch.nn.Linear(6, 3)
    student = torch.nn.Sequential(stack, head)
    teacher = torch.nn.Sequential(torch.nn.Linear(6, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3))
    x = torch.randn(32, 6)
    losses = distill_learngene(student, teacher, lambda step: x, steps=40, lr=0.05, temperature=2.0)
    assert losses[-1] < losses[0]
    trainable = sum(p.numel() for p in stack.parameters() if p.requires_grad)
    assert trainable == 2 * sum(p.numel() for p in template.parameters())
    gene_a, gene_b = stack.genes()
    # a plain 4-layer model initialised by expansion computes exactly what the auxiliary stack computes
    plain = torch.nn.Sequential(*[torch.nn.Sequential(torch.nn.Linear(6, 6), torch.nn.Tanh()) for _ in range(4)])
    for block, layer in zip(plain, expand_learngene(gene_a, gene_b, 4), strict=True):
        block.load_state_dict(layer)
    with torch.no_grad():
        assert torch.allclose(plain(x), stack(x), atol=1e-6)


def test_tleg_expand_tool_from_a_file_and_by_fitting(tmp_path: Path) -> None:
    a, b = _genes()
    gene = save_weights(
        {**{f"A.{k}": v for k, v in a.items()}, **{f"B.{k}": v for k, v in b.items()}}, tmp_path / "gene.safetensors"
    )
    rest = save_weights({"embed.weight": torch.ones(2, 2), "layers.0.w": torch.zeros(4, 3)}, tmp_path / "rest.st")
    result = tleg_expand(
        TlegExpandInput(
            depth=6,
            out=str(tmp_path / "d6.safetensors"),
            learngene=str(gene),
            layer_prefix="layers.{i}.",
            copy_rest_from=str(rest),
        )
    )
    out = load_weights(result.out)
    assert result.layer_parameters == 12 and result.copied_parameters == 1
    assert torch.equal(out["layers.0.w"], a["w"]) and torch.equal(out["embed.weight"], torch.ones(2, 2))
    assert torch.allclose(out["layers.5.b"], a["b"] + b["b"])
    refit = tleg_expand(
        TlegExpandInput(depth=3, out=str(tmp_path / "d3.safetensors"), fit_from=result.out, layer_prefix="layers.{i}.")
    )
    small = load_weights(refit.out)
    assert torch.allclose(small["layers.0.w"], a["w"], atol=1e-5)
    assert torch.allclose(small["layers.1.w"], a["w"] + 0.5 * b["w"], atol=1e-5)
