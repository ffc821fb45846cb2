"""DWA: the adjustment has norm ρ and ascends the real-batch loss, the teacher is restored, ρ>0 diversifies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from malot_data.core.nets import make_mlp, penultimate, train_classifier
from malot_data.dwa_synthesize import directed_adjustment, synthesis_loss, synthesize

from malot.errors import ToolError
from malot.tools import tool_of
from malot.tools.registry import ToolRegistry


def _data(n: int = 300, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(3, 2, 6, generator=g) * 2
    y = torch.randint(3, (n,), generator=g)
    return centres[y, torch.randint(2, (n,), generator=g)] + torch.randn(n, 6, generator=g), y


@pytest.fixture(scope="module")
def teacher() -> tuple[torch.nn.Sequential, torch.Tensor, torch.Tensor]:
    x, y = _data()
    model = make_mlp(6, 3, 16, batchnorm=True, seed=0)
    train_classifier(model, x, y, steps=60)
    return model, x, y


@pytest.mark.parametrize("rho", [0.0, 0.01, 0.3, 2.0])
def test_adjustment_has_norm_rho_and_raises_the_real_loss(teacher, rho: float) -> None:  # type: ignore[no-untyped-def]
    model, x, y = teacher
    delta = directed_adjustment(model, x[:8], y[:8], rho)
    norm = float(torch.sqrt(sum((d.double() ** 2).sum() for d in delta)))
    assert norm == pytest.approx(rho, rel=1e-5, abs=1e-9)
    if 0 < rho <= 0.3:  # first order: a small step along the gradient increases the loss
        params = list(model.parameters())
        with torch.no_grad():
            before = float(torch.nn.functional.cross_entropy(model(x[:8]), y[:8]))
            for p, d in zip(params, delta, strict=True):
                p.add_(d)
            after = float(torch.nn.functional.cross_entropy(model(x[:8]), y[:8]))
            for p, d in zip(params, delta, strict=True):
                p.sub_(d)
        assert after > before


def _similarity(model: torch.nn.Sequential, xs: torch.Tensor, ys: torch.Tensor) -> float:
    with torch.no_grad():
        f = torch.nn.functional.normalize(penultimate(model.eval(), xs), dim=1)
    sims = []
    for c in ys.unique():
        fc = f[ys == c]
        n = fc.shape[0]
        sims.append(float(((fc @ fc.T).sum() - n) / (n * (n - 1))))
    return float(np.mean(sims))


@pytest.mark.slow
def test_teacher_is_restored_and_large_rho_gives_less_similar_features(teacher) -> None:  # type: ignore[no-untyped-def]
    model, x, y = teacher
    state = {k: v.clone() for k, v in model.state_dict().items()}
    plain = synthesize(model, x, y, 4, rho=0.0, steps=40, seed=0)
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k])
    diverse = synthesize(model, x, y, 4, rho=3.0, steps=40, seed=0)
    assert plain.adjustment_norms == [0.0] * 4 and diverse.adjustment_norms == pytest.approx([3.0] * 4, rel=1e-5)
    assert _similarity(model, diverse.x, diverse.y) < _similarity(model, plain.x, plain.y)


def test_synthesis_loss_and_bad_input(teacher) -> None:  # type: ignore[no-untyped-def]
    model, x, y = teacher
    assert float(synthesis_loss(model, x[:30], y[:30], 0.0).detach()) == pytest.approx(
        float(torch.nn.functional.cross_entropy(model.eval()(x[:30]), y[:30]).detach()), rel=1e-6
    )
    with pytest.raises(ToolError, match="BatchNorm"):
        synthesis_loss(make_mlp(6, 3, 8), x[:4], y[:4], 0.1)
    with pytest.raises(ToolError, match="rho"):
        directed_adjustment(model, x[:4], y[:4], -1.0)
    with pytest.raises(ToolError, match="ipc"):
        synthesize(model, x, y, 1000, rho=0.1)


def test_tool_writes_a_relabelled_synthetic_set(tmp_path: Path) -> None:
    import malot_data.dwa_synthesize as module

    x, y = _data(90)
    np.savez(tmp_path / "d.npz", x=x.numpy(), y=y.numpy())
    registry = ToolRegistry()
    t = tool_of(module.dwa_synthesize)
    assert t is not None
    registry.register(t)
    args = {
        "data": f"{tmp_path}/d.npz:x",
        "labels": f"{tmp_path}/d.npz:y",
        "ipc": 2,
        "out": str(tmp_path / "s.npz"),
        "rho": 0.1,
        "steps": 5,
        "teacher_steps": 20,
        "hidden": 8,
    }
    out = registry.run_sync("dwa_synthesize", args, isolation="inline").model_dump()
    saved = np.load(tmp_path / "s.npz")
    assert out["size"] == 6 and saved["x"].shape == (6, 6) and sorted(saved["labels"].tolist()) == [0, 0, 1, 1, 2, 2]
    assert out["adjustment_norms"] == pytest.approx([0.1, 0.1], rel=1e-5)
    with pytest.raises(ToolError, match="vector of labels"):
        registry.run_sync("dwa_synthesize", {**args, "labels": f"{tmp_path}/d.npz:x"}, isolation="inline")
