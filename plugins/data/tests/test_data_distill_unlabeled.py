"""KRR-ST: the closed-form head is scikit-learn's KernelRidge, the outer loss decreases, bad input is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from malot_data.core.krr import krr_predict
from malot_data.distill_unlabeled import _extractor, krr_st, outer_loss

from malot.errors import ToolError
from malot.tools import tool_of
from malot.tools.registry import ToolRegistry


def _data(n: int = 300, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 3, generator=g)
    x = torch.tanh(z @ torch.randn(3, 10, generator=g)) + 0.05 * torch.randn(n, 10, generator=g)
    return x, torch.cat([z, torch.sin(2 * z)], dim=1)


def test_closed_form_head_matches_sklearn_kernel_ridge() -> None:
    from sklearn.kernel_ridge import KernelRidge

    rng = np.random.default_rng(0)
    fs, ys, fq = rng.normal(size=(12, 5)), rng.normal(size=(12, 3)), rng.normal(size=(7, 5))
    ours = krr_predict(torch.tensor(fs), torch.tensor(ys), torch.tensor(fq), 0.3).numpy()
    theirs = KernelRidge(alpha=0.3, kernel="linear").fit(fs, ys).predict(fq)
    assert np.allclose(ours, theirs, atol=1e-10)


@pytest.mark.slow
def test_outer_loss_decreases_on_fixed_held_out_models() -> None:
    torch.manual_seed(0)
    x, t = _data()
    result = krr_st(x, t, 10, steps=120, pool=3, max_age=20, seed=0)
    assert result.x.shape == (10, 10) and result.y.shape == (10, 6)
    g = torch.Generator().manual_seed(0)
    init = torch.randperm(300, generator=g)[:10]  # the initialisation krr_st starts from
    judges = [_extractor(10, 64, 100 + i) for i in range(3)]  # models the distillation never saw
    with torch.no_grad():
        before = np.mean([float(outer_loss(m, x[init], t[init], x, t, 1e-3)) for m in judges])
        after = np.mean([float(outer_loss(m, result.x, result.y, x, t, 1e-3)) for m in judges])
    assert after < 0.9 * before
    assert np.mean(result.losses[-10:]) < np.mean(result.losses[:10])


def test_bad_input() -> None:
    x, t = _data(20)
    with pytest.raises(ToolError, match="size"):
        krr_st(x, t, 50, steps=1)
    with pytest.raises(ToolError, match="teacher targets"):
        krr_st(x, t[:10], 5, steps=1)


def test_tool_writes_the_distilled_set(tmp_path: Path) -> None:
    import malot_data.distill_unlabeled as module

    x, t = _data(80)
    np.savez(tmp_path / "d.npz", x=x.numpy(), t=t.numpy(), bad=np.full((80, 2), np.nan))
    registry = ToolRegistry()
    tool = tool_of(module.distill_unlabeled)
    assert tool is not None and tool.metadata.heavy
    registry.register(tool)
    args = {
        "data": f"{tmp_path}/d.npz:x",
        "teacher": f"{tmp_path}/d.npz:t",
        "size": 6,
        "steps": 15,
        "out": str(tmp_path / "syn.npz"),
    }
    out = registry.run_sync("distill_unlabeled", args, isolation="inline").model_dump()
    saved = np.load(tmp_path / "syn.npz")
    assert out["size"] == 6 and saved["x"].shape == (6, 10) and saved["y"].shape == (6, 6)
    with pytest.raises(ToolError, match="NaN"):
        registry.run_sync("distill_unlabeled", {**args, "teacher": f"{tmp_path}/d.npz:bad"}, isolation="inline")
