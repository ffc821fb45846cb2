"""Reprogramming tickets: ECE on crafted probabilities, label mapping, LP/VP on a frozen source, the tool."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from malot_sparse.core.calibration import expected_calibration_error  # noqa: E402
from malot_sparse.core.mlp import build_mlp, save_mlp, train_classifier  # noqa: E402
from malot_sparse.reprogram import frequency_label_mapping, input_prompt, linear_probe  # noqa: E402

from malot.errors import ToolError  # noqa: E402


def test_ece_on_crafted_probabilities() -> None:
    labels = torch.tensor([0, 0, 1, 1])
    confident = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    assert expected_calibration_error(confident, labels) == 0.0
    overconfident = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])  # half right at confidence 1
    assert expected_calibration_error(overconfident, labels) == pytest.approx(0.5)
    # bin (0.6, 0.7]: two at 0.7 with one right -> |0.5 − 0.7| = 0.2; bin (0.9, 1.0]: two at 0.95, both right -> 0.05
    mixed = torch.tensor([[0.7, 0.3], [0.3, 0.7], [0.95, 0.05], [0.05, 0.95]])
    assert expected_calibration_error(mixed, torch.tensor([0, 0, 0, 1]), bins=10) == pytest.approx(
        0.5 * 0.2 + 0.5 * 0.05
    )
    assert expected_calibration_error(mixed, torch.tensor([0, 0, 0, 1]), bins=1) == pytest.approx(abs(0.75 - 0.825))
    with pytest.raises(ToolError, match="NaN"):
        expected_calibration_error(torch.tensor([[float("nan"), 1.0]]), torch.tensor([0]))
    with pytest.raises(ToolError, match="labels"):
        expected_calibration_error(mixed, torch.tensor([0, 1]))


def test_frequency_label_mapping_is_one_to_one_and_follows_the_predictions() -> None:
    model = torch.nn.Linear(3, 3, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]))
    x = torch.eye(3)  # input i is predicted as source class (i + 2) % 3
    assert frequency_label_mapping(model, x, torch.tensor([0, 1, 2]), 3) == [2, 0, 1]
    assert frequency_label_mapping(model, x[:2], torch.tensor([0, 0]), 2)[0] in (0, 2)
    assert len(set(frequency_label_mapping(model, x, torch.tensor([0, 0, 1]), 2))) == 2


def _source(seed: int = 0) -> tuple[torch.nn.Sequential, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(400, 8, generator=g)
    y = (x[:, :4].sum(dim=1) > 0).long() * 2 + (x[:, 4] > 0).long()
    torch.manual_seed(seed)
    model = build_mlp(8, [32], 4)
    train_classifier(model, x, y, steps=150, lr=0.01)
    return model, x, y


def test_probe_and_prompt_adapt_a_frozen_source_and_leave_it_unchanged() -> None:
    model, x, y = _source()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    target = (y >= 2).long()  # a coarser target task on the same inputs
    lp = linear_probe(model, x[:300], target[:300], x[300:], target[300:], classes=2, steps=100)
    vp = input_prompt(model, x[:300, :6], target[:300], x[300:, :6], target[300:], classes=2, steps=100)
    assert lp.accuracy > 0.8 and vp.accuracy > 0.6
    padded = linear_probe(model, x[:300, :6], target[:300], x[300:, :6], target[300:], classes=2, steps=100)
    assert padded.probs.shape == (100, 2)  # fewer target features are zero-padded into the source input
    assert 0.0 <= lp.ece <= 1.0 and 0.0 <= vp.ece <= 1.0
    assert torch.allclose(lp.probs.sum(dim=1), torch.ones(100)) and vp.probs.shape == (100, 2)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert all(p.requires_grad for p in model.parameters())
    with pytest.raises(ToolError, match="features"):
        input_prompt(model, torch.randn(10, 9), target[:10], torch.randn(5, 9), target[:5], classes=2, steps=1)
    with pytest.raises(ToolError, match="classes"):
        input_prompt(model, x[:10], y[:10], x[:5], y[:5], classes=5, steps=1)


def test_reprogram_ticket_tool_through_the_registry(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from malot.tools import get_registry

    model, x, y = _source(1)
    mask = model[0].weight.abs() > model[0].weight.abs().median()
    with torch.no_grad():
        model[0].weight.mul_(mask)
    source = save_mlp(model, tmp_path / "ticket.safetensors", masks={"0.weight": mask})
    data = tmp_path / "target.npz"
    import numpy as np

    np.savez(data, x=x.numpy(), y=(y % 2).numpy())
    args = {"source": str(source), "data": str(data), "steps": 40}
    out = get_registry().run_sync("reprogram_ticket", args, isolation="inline")
    assert set(out.scores) == {"linear_probe", "input_prompt"}  # type: ignore[attr-defined]
    assert out.source_sparsity == pytest.approx(0.5, abs=0.01)  # type: ignore[attr-defined]
    bad = tmp_path / "bad.safetensors"
    save_file({"x": torch.randn(5, 8), "y": torch.zeros(4, dtype=torch.long)}, str(bad))
    with pytest.raises(ToolError, match="x must be"):
        get_registry().run_sync("reprogram_ticket", {**args, "data": str(bad)}, isolation="inline")
    with pytest.raises(ToolError, match="not a sparse-plugin MLP checkpoint"):
        get_registry().run_sync("reprogram_ticket", {**args, "source": str(bad)}, isolation="inline")
