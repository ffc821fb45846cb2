"""TTM: granite-tsfm's TinyTimeMixer built tiny, pre-trained, zero-shot and few-shot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("tsfm_public")

from malot_domains.core.synthetic import seasonal_series  # noqa: E402
from malot_domains.ttm import (  # noqa: E402
    TtmShape,
    build_ttm,
    downsample,
    few_shot_windows,
    finetune_head,
    forecast,
    last_value_forecast,
    pretrain,
    windows,
)

from malot.errors import ToolError  # noqa: E402
from malot.tools import get_registry  # noqa: E402


def test_tiny_config_has_under_a_million_parameters_and_forecasts_shape_b_h_c() -> None:
    shape = TtmShape(context_length=64, prediction_length=16)
    model = build_ttm(shape)
    assert sum(p.numel() for p in model.parameters()) < 1_000_000
    assert model.config.adaptive_patching_levels == 2 and model.config.resolution_prefix_tuning
    out = forecast(model, np.random.default_rng(0).normal(size=(5, 64, 3)), resolution=1)
    assert out.shape == (5, 16, 3)


def test_windows_and_downsampling_are_exact() -> None:
    series = np.arange(20, dtype=float).reshape(10, 2)  # two channels: even and odd numbers
    past, future = windows(series, context=4, horizon=2, stride=2)
    assert past.shape == (6, 4, 1) and future.shape == (6, 2, 1)
    assert past[0, :, 0].tolist() == [0, 2, 4, 6] and future[0, :, 0].tolist() == [8, 10]
    assert past[3, :, 0].tolist() == [1, 3, 5, 7]  # channel-major: the second channel starts at index 3
    assert np.array_equal(downsample(series, 1), series)
    assert downsample(series, 2)[:, 0].tolist() == [1, 5, 9, 13, 17]
    recent, _ = few_shot_windows(series, TtmShape(context_length=4, prediction_length=2, patch_length=2), 0.25)
    assert recent.shape[0] == 2 * 1 and recent[0, -1, 0] == 14.0  # the last window of each channel


def test_few_shot_fine_tuning_freezes_the_backbone() -> None:
    torch.manual_seed(0)
    model = build_ttm(TtmShape())
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    series = seasonal_series(0, 200, 1)
    past, future = windows(series, 64, 16, stride=8)
    finetune_head(model, past, future, steps=3)
    for name, param in model.named_parameters():
        if name.startswith("backbone."):
            assert torch.equal(param.detach(), before[name]), name
    moved = [n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])]
    assert moved and all(n.startswith(("decoder.", "head.")) for n in moved)
    assert all(p.requires_grad for p in model.parameters())


@pytest.mark.slow
def test_pretrained_zero_shot_beats_last_value_on_unseen_sines() -> None:
    torch.manual_seed(0)
    model = build_ttm(TtmShape())
    source = [seasonal_series(s, 300, 1, periods=(6, 64), noise=0.05) for s in range(32)]
    pretrain(model, source, steps=150, lr=5e-3, stride=8)
    target = seasonal_series(999, 400, 2, periods=(10, 50), noise=0.1)
    starts = range(0, 400 - 80 + 1, 16)
    past = np.stack([target[s : s + 64] for s in starts])
    future = np.stack([target[s + 64 : s + 80] for s in starts])
    ttm_mse = float(np.mean((forecast(model, past) - future) ** 2))
    naive_mse = float(np.mean((last_value_forecast(past, 16) - future) ** 2))
    assert ttm_mse < 0.7 * naive_mse


def test_tool_runs_through_the_registry(tmp_path: Path) -> None:
    np.save(tmp_path / "src.npy", np.stack([seasonal_series(s, 200, 1) for s in range(3)]))
    np.save(tmp_path / "tgt.npy", seasonal_series(9, 300, 2))
    out = get_registry().run_sync(
        "ttm_forecast",
        {
            "source": str(tmp_path / "src.npy"),
            "target": str(tmp_path / "tgt.npy"),
            "pretrain_steps": 3,
            "finetune_steps": 2,
            "out": str(tmp_path / "f.npy"),
        },
        isolation="inline",
    )
    assert out.mode == "few-shot" and out.finetune_windows > 0 and out.test_windows > 0  # type: ignore[attr-defined]
    assert out.ttm_mse > 0 and out.last_value_mse > 0  # type: ignore[attr-defined]
    assert np.load(tmp_path / "f.npy").shape == (16, 2)
    zero = get_registry().run_sync(
        "ttm_forecast",
        {
            "source": str(tmp_path / "src.npy"),
            "target": str(tmp_path / "tgt.npy"),
            "mode": "zero-shot",
            "pretrain_steps": 2,
        },
        isolation="inline",
    )
    assert zero.mode == "zero-shot" and zero.finetune_windows == 0  # type: ignore[attr-defined]


def test_bad_inputs_give_clear_errors(tmp_path: Path) -> None:
    registry = get_registry()
    good = tmp_path / "good.npy"
    np.save(good, seasonal_series(0, 300, 1))
    nan = seasonal_series(1, 300, 1)
    nan[5, 0] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    np.save(tmp_path / "short.npy", seasonal_series(2, 50, 1))
    with pytest.raises(ToolError, match="NaN"):
        registry.run_sync(
            "ttm_forecast", {"source": str(good), "target": str(tmp_path / "nan.npy")}, isolation="inline"
        )
    with pytest.raises(ToolError, match="test period"):
        registry.run_sync(
            "ttm_forecast", {"source": str(good), "target": str(tmp_path / "short.npy")}, isolation="inline"
        )
    with pytest.raises(ToolError, match="multiple of patch_length"):
        registry.run_sync(
            "ttm_forecast", {"source": str(good), "target": str(good), "context_length": 60}, isolation="inline"
        )
    with pytest.raises(ToolError, match="does not exist"):
        registry.run_sync("ttm_forecast", {"source": str(tmp_path / "x.npy"), "target": str(good)}, isolation="inline")
