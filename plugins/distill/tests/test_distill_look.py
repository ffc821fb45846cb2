"""look_loss (LOOK): prototype bank with k = classes is cosine-classifier CE, zero loss with pure neighbourhoods,
leave-one-out search, multi-modal class kept apart, tool run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from malot_distill.core.data import save_tensors
from malot_distill.core.mlp import build_mlp
from malot_distill.look import LookInput, knn_indices, look_loss, look_loss_tool, train_look

from malot.errors import ToolError


def test_prototype_bank_with_k_equal_classes_is_cosine_cross_entropy() -> None:
    features, labels = torch.randn(8, 5), torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    prototypes = torch.randn(4, 5)
    got = look_loss(features, labels, prototypes, torch.arange(4), k=4, temperature=0.2)
    logits = F.normalize(features, dim=-1) @ F.normalize(prototypes, dim=-1).T / 0.2
    assert torch.allclose(got, F.cross_entropy(logits, labels), atol=1e-5)


def test_loss_is_zero_when_every_neighbour_shares_the_label() -> None:
    bank = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    bank_labels = torch.tensor([0, 0, 1, 1])
    features = torch.tensor([[1.0, 0.05], [0.05, 1.0]])
    assert float(look_loss(features, torch.tensor([0, 1]), bank, bank_labels, k=2)) == 0.0


def test_leave_one_out_search_never_returns_the_sample_itself() -> None:
    bank = F.normalize(torch.randn(20, 4), dim=-1)
    found = knn_indices(bank[:5], bank, 3, torch.arange(5))
    assert found.shape == (5, 3) and all(i not in row.tolist() for i, row in enumerate(found))


def _two_mode_class(n: int = 120) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    centres = torch.tensor([[4.0, 0.0], [-4.0, 0.0], [0.0, 4.0]])  # class 0 owns the first two (two modes)
    mode = torch.randint(3, (n,), generator=gen)
    x = centres[mode] + 0.5 * torch.randn(n, 2, generator=gen)
    return x, (mode == 2).long(), mode


@pytest.mark.slow
def test_a_two_mode_class_stays_apart_under_look_but_not_under_cross_entropy() -> None:
    x, y, mode = _two_mode_class()
    look = build_mlp([2, 32, 8], seed=0)
    train_look(look, x, y, k=5, steps=60, lr=1e-2)
    ce = build_mlp([2, 32, 8], seed=0)
    head = torch.nn.Linear(8, 2)
    opt = torch.optim.Adam([*ce.parameters(), *head.parameters()], lr=1e-2)
    for _ in range(60):
        opt.zero_grad()
        F.cross_entropy(head(torch.relu(ce(x))), y).backward()
        opt.step()

    def mode_cosine(model: torch.nn.Module) -> float:
        with torch.no_grad():
            f = F.normalize(model(x), dim=-1)
        return float(F.cosine_similarity(f[mode == 0].mean(0), f[mode == 1].mean(0), dim=0))

    assert mode_cosine(look) < mode_cosine(ce)


def test_look_tool_through_the_registry_and_bad_inputs(tmp_path: Path) -> None:
    from malot.tools import get_registry

    x, y, _ = _two_mode_class(60)
    data = save_tensors({"x": x, "y": y, "x_test": x[:10], "y_test": y[:10]}, tmp_path / "d.safetensors")
    out = get_registry().run_sync(
        "look_loss", {"data": str(data), "out": str(tmp_path / "e.safetensors"), "steps": 3, "k": 5},
        isolation="inline",
    )  # fmt: skip
    assert 0.0 <= out.knn_accuracy <= 1.0  # type: ignore[attr-defined]
    with pytest.raises(ToolError, match="needs more than"):
        look_loss_tool(LookInput(data=str(data), out=str(tmp_path / "e.safetensors"), k=60))
    with pytest.raises(ToolError, match="bank size"):
        look_loss(torch.randn(2, 3), torch.tensor([0, 1]), torch.randn(2, 3), torch.tensor([0, 1]), k=5)
