"""KIND: SVD learngene / class-gated tailor split, the gated layer, and the kind_split tool."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from malot_weights.kind import KindSplitInput, kind_linear, kind_reconstruct_file, kind_split_tool, split_weight  # noqa: E402
from malot_weights.tool_io import save_weights  # noqa: E402


def _weight() -> torch.Tensor:
    return torch.randn(7, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


@pytest.mark.parametrize("n_learngene", [0, 2, 5])
def test_all_components_reconstruct_the_weight_exactly(n_learngene: int) -> None:
    w = _weight()
    f = split_weight(w, n_learngene, n_classes=3)
    assert torch.allclose(f.weight(), w, atol=1e-12)
    assert f.s_gene.numel() == n_learngene and f.s_tailor.numel() == 5 - n_learngene


def test_class_gates_partition_the_tailors() -> None:
    w = _weight()
    f = split_weight(w, 2, n_classes=3)
    assert f.tailor_class.tolist() == [0, 1, 2]
    per_class = [f.weight([c]) - f.learngene() for c in range(3)]
    assert torch.allclose(f.learngene() + sum(per_class), w, atol=1e-12)
    assert torch.allclose(f.weight([0, 1, 2]), w, atol=1e-12)
    # the learngene is the best rank-2 approximation: its singular values are the two largest
    assert torch.allclose(f.s_gene, torch.linalg.svdvals(w)[:2])


def test_gated_layer_matches_the_class_specific_weight_per_sample() -> None:
    torch.manual_seed(0)
    f = split_weight(torch.randn(6, 4), 2, n_classes=2)
    layer = kind_linear(4, 6, n_learngene=2, n_tailor=2, n_classes=2, factors=f, bias=False)
    x = torch.randn(5, 4)
    classes = torch.tensor([0, 1, 1, 0, 1])
    out = layer(x, classes)
    for i in range(5):
        assert torch.allclose(out[i], f.weight([int(classes[i])]) @ x[i], atol=1e-5)
    # gradients from a class-0 sample never reach class-1 tailors (knowledge diversion)
    layer(x[:1], torch.tensor([0])).sum().backward()
    class1 = (layer.tailor_class == 1).nonzero().squeeze(1)
    assert torch.all(layer.s_tailor.grad[class1] == 0) and torch.any(layer.s_gene.grad != 0)
    before = layer.u_gene.detach().clone()
    layer.reset_tailors(torch.Generator().manual_seed(1))
    assert torch.equal(layer.u_gene.detach(), before) and torch.equal(layer.to_factors().u_gene, before)


def test_kind_split_tool_round_trip(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    weights = {"a.weight": torch.randn(8, 6, generator=g), "a.bias": torch.randn(8, generator=g)}
    src = save_weights(weights, tmp_path / "m.safetensors")
    result = kind_split_tool(KindSplitInput(weights=str(src), out=str(tmp_path / "k.safetensors"), n_classes=2))
    assert result.matrices == 1 and result.max_reconstruction_error < 1e-5
    assert 0.5 < result.learngene_energy < 1.0
    full = kind_reconstruct_file(result.out)
    assert torch.allclose(full["a.weight"], weights["a.weight"], atol=1e-5)
    assert torch.equal(full["a.bias"], weights["a.bias"])
    only0 = kind_reconstruct_file(result.out, [0])
    assert not torch.allclose(only0["a.weight"], weights["a.weight"], atol=1e-3)
