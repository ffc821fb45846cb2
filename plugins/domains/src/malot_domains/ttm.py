"""Tiny Time Mixers (Ekambaram et al., NeurIPS 2024): a tiny pre-trained forecaster for zero- and few-shot use.

TTM is a TSMixer backbone over patches of a standardised context window, with three ideas that let a model of well
under a million parameters transfer across datasets:

* **adaptive patching**: successive backbone levels mix patches of different lengths (the paper's Sec. 3.2);
* **resolution prefix tuning**: a learned embedding of the sampling resolution (``freq_token``) is prepended as an
  extra patch, so one model serves several resolutions;
* **downsampling augmentation**: pre-training series are average-pooled by factors 2, 4, ... to create more
  resolutions, each labelled with its resolution token.

Channels are handled independently (TTM's ``common_channel`` mode): a ``(T, C)`` series is C univariate series
sharing the weights. *Zero-shot*: the pre-trained model forecasts the target as is. *Few-shot*: the backbone is
frozen and only the decoder and forecast head are fine-tuned on a few target windows (the paper's few-shot recipe).

What is the library's: the model itself, ``TinyTimeMixerForPrediction`` from IBM's granite-tsfm (``tsfm_public``),
built here from a small config with random initial weights (no hub checkpoint). What is ours: the pre-training data
pipeline (windows, downsampling augmentation with resolution tokens), the training loops, the frozen-backbone
few-shot fine-tune, the chronological evaluation and the last-value baseline.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_domains.core import adam_fit, load_array, require_finite, require_ndim, save_array, seed_all

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

__all__ = [
    "TtmForecastInput",
    "TtmForecastOutput",
    "TtmShape",
    "build_ttm",
    "downsample",
    "few_shot_windows",
    "finetune_head",
    "forecast",
    "last_value_forecast",
    "pretrain",
    "ttm_forecast",
    "windows",
]


@dataclass(frozen=True)
class TtmShape:
    """The size of a TinyTimeMixer: context and horizon lengths, patching, widths and depths."""

    context_length: int = 64
    prediction_length: int = 16
    patch_length: int = 8
    d_model: int = 16
    num_layers: int = 2
    decoder_d_model: int = 16
    decoder_num_layers: int = 1
    adaptive_patching_levels: int = 2
    resolutions: int = 3

    def check(self) -> None:
        """Raise a :class:`ToolError` for shapes TinyTimeMixer cannot build."""
        if self.context_length % self.patch_length:
            raise ToolError(
                f"context_length {self.context_length} is not a multiple of patch_length {self.patch_length}",
                hint="pick a context length that patches evenly",
            )
        patches = self.context_length // self.patch_length
        if self.adaptive_patching_levels and patches % (2 ** (self.adaptive_patching_levels - 1)):
            raise ToolError(
                f"{patches} patches cannot be split for {self.adaptive_patching_levels} adaptive patching levels",
                hint="use fewer adaptive patching levels or a longer context",
            )
        if self.d_model % (2 ** max(self.adaptive_patching_levels - 1, 0)):
            raise ToolError("d_model must be divisible by 2^(adaptive_patching_levels-1)", hint="raise d_model")


def _quiet_tsfm() -> None:
    os.environ.setdefault("TSFM_PYTHON_LOGGING_LEVEL", "WARNING")


def build_ttm(shape: TtmShape) -> Any:
    """A randomly initialised univariate ``TinyTimeMixerForPrediction`` with resolution prefix tuning.

    Adaptive patching and the resolution prefix are granite-tsfm's; the sizes come from ``shape``.
    """
    shape.check()
    _quiet_tsfm()
    from tsfm_public.models.tinytimemixer import TinyTimeMixerConfig, TinyTimeMixerForPrediction

    config = TinyTimeMixerConfig(
        context_length=shape.context_length,
        prediction_length=shape.prediction_length,
        patch_length=shape.patch_length,
        patch_stride=shape.patch_length,
        num_input_channels=1,
        d_model=shape.d_model,
        num_layers=shape.num_layers,
        decoder_d_model=shape.decoder_d_model,
        decoder_num_layers=shape.decoder_num_layers,
        adaptive_patching_levels=shape.adaptive_patching_levels,
        resolution_prefix_tuning=True,
        frequency_token_vocab_size=shape.resolutions,
        dropout=0.1,
        head_dropout=0.1,
        scaling="std",
        mode="common_channel",
    )
    return TinyTimeMixerForPrediction(config)


def downsample(series: np.ndarray, factor: int) -> np.ndarray:
    """Average-pool a ``(T, C)`` series by ``factor`` along time (the paper's downsampling augmentation)."""
    if factor < 1:
        raise ToolError(f"downsampling factor must be at least 1, got {factor}")
    usable = (series.shape[0] // factor) * factor
    pooled: np.ndarray = series[:usable].reshape(usable // factor, factor, series.shape[1]).mean(axis=1)
    return pooled


def windows(series: np.ndarray, context: int, horizon: int, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Sliding windows of a ``(T, C)`` series, channels folded into the batch: past ``(N, context, 1)`` and future
    ``(N, horizon, 1)``, ordered by start time within each channel."""
    import numpy as np

    length = series.shape[0]
    starts = list(range(0, length - context - horizon + 1, stride))
    if not starts:
        return np.zeros((0, context, 1)), np.zeros((0, horizon, 1))
    past = np.stack([series[s : s + context] for s in starts])  # (N, context, C)
    future = np.stack([series[s + context : s + context + horizon] for s in starts])
    return _fold_channels(past), _fold_channels(future)


def _fold_channels(array: np.ndarray) -> np.ndarray:
    """``(N, L, C)`` to ``(C * N, L, 1)``, channel-major."""
    return array.transpose(2, 0, 1).reshape(-1, array.shape[1], 1)


def _tensor(array: np.ndarray) -> torch.Tensor:
    import torch

    return torch.as_tensor(array, dtype=torch.float32)


def _mse_loss(
    model: nn.Module, past: torch.Tensor, future: torch.Tensor, tokens: torch.Tensor, generator: torch.Generator
) -> Any:
    import torch

    def loss(step: int) -> torch.Tensor:
        pick = torch.randint(0, past.shape[0], (min(64, past.shape[0]),), generator=generator)
        out = model(past_values=past[pick], future_values=future[pick], freq_token=tokens[pick])
        value: torch.Tensor = out.loss
        return value

    return loss


def pretrain(
    model: nn.Module,
    source: list[np.ndarray],
    *,
    steps: int,
    lr: float = 3e-3,
    stride: int = 4,
    seed: int = 0,
) -> list[float]:
    """Pre-train on source series with downsampling augmentation: every series at factors 1, 2, 4, ... (one per
    resolution token), each window labelled with its resolution token. Returns the per-step losses."""
    import numpy as np
    import torch

    config: Any = model.config
    context, horizon = int(config.context_length), int(config.prediction_length)
    pasts, futures, tokens = [], [], []
    for series in source:
        for level in range(int(config.frequency_token_vocab_size)):
            past, future = windows(downsample(series, 2**level), context, horizon, stride)
            pasts.append(past)
            futures.append(future)
            tokens.append(np.full(past.shape[0], level))
    past_t, future_t = _tensor(np.concatenate(pasts)), _tensor(np.concatenate(futures))
    if past_t.shape[0] == 0:
        raise ToolError(
            "the source series are too short for one pre-training window",
            hint=f"give series longer than context + horizon = {context + horizon} steps",
        )
    token_t = torch.as_tensor(np.concatenate(tokens), dtype=torch.long)
    generator = seed_all(seed)
    model.train()
    losses = adam_fit(model.parameters(), _mse_loss(model, past_t, future_t, token_t, generator), steps=steps, lr=lr)
    model.eval()
    return losses


def finetune_head(
    model: nn.Module,
    past: np.ndarray,
    future: np.ndarray,
    *,
    resolution: int = 0,
    steps: int,
    lr: float = 3e-3,
    seed: int = 0,
) -> list[float]:
    """Few-shot fine-tuning: freeze the backbone, train only the decoder and the forecast head on target windows."""
    import torch

    if past.shape[0] == 0:
        raise ToolError("no target windows to fine-tune on", hint="give a longer target series or a larger fraction")
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    for name, param in model.named_parameters():
        param.requires_grad_(not name.startswith("backbone."))
    generator = seed_all(seed)
    tokens = torch.full((past.shape[0],), resolution, dtype=torch.long)
    model.train()
    try:
        losses = adam_fit(
            model.parameters(), _mse_loss(model, _tensor(past), _tensor(future), tokens, generator), steps=steps, lr=lr
        )
    finally:
        for name, param in model.named_parameters():
            param.requires_grad_(flags[name])
        model.eval()
    return losses


def forecast(model: nn.Module, past: np.ndarray, resolution: int = 0) -> np.ndarray:
    """Forecast ``(B, horizon, C)`` from ``(B, context, C)`` contexts, each channel on its own (shared weights)."""
    import numpy as np
    import torch

    batch, context, channels = past.shape
    flat = past.transpose(0, 2, 1).reshape(batch * channels, context, 1)
    model.eval()
    with torch.no_grad():
        tokens = torch.full((flat.shape[0],), resolution, dtype=torch.long)
        out = model(past_values=_tensor(flat), freq_token=tokens).prediction_outputs
    pred = out.numpy().reshape(batch, channels, -1).transpose(0, 2, 1)
    return np.ascontiguousarray(pred)


def last_value_forecast(past: np.ndarray, horizon: int) -> np.ndarray:
    """The naive baseline: repeat each channel's last observed value ``horizon`` times."""
    import numpy as np

    return np.repeat(past[:, -1:, :], horizon, axis=1)


def _as_series_list(array: np.ndarray, name: str) -> list[np.ndarray]:
    require_ndim(name, array, (1, 2, 3), "(T,), (T, C) or (S, T, C)")
    require_finite(name, array)
    if array.ndim == 1:
        return [array.reshape(-1, 1).astype(float)]
    if array.ndim == 2:
        return [array.astype(float)]
    return [a.astype(float) for a in array]


_PAPER = (
    "Tiny Time Mixers (TTMs): Fast Pre-trained Models for Enhanced Zero/Few-Shot Forecasting of Multivariate "
    "Time Series (Ekambaram et al., NeurIPS 2024)"
)


class TtmForecastInput(BaseModel):
    """Arguments of the ``ttm_forecast`` tool."""

    source: str = Field(description="pre-training series: .npy/.npz/.csv of shape (T,), (T, C) or (S, T, C)")
    target: str = Field(description="target series (T, C): its first part is history, its tail the test period")
    source_key: str | None = Field(default=None, description="array name inside a .npz source")
    target_key: str | None = Field(default=None, description="array name inside a .npz target")
    mode: Literal["zero-shot", "few-shot"] = "few-shot"
    context_length: int = Field(default=64, gt=0)
    prediction_length: int = Field(default=16, gt=0)
    patch_length: int = Field(default=8, gt=0)
    target_resolution: int = Field(default=0, ge=0, description="resolution token of the target (0 = source rate)")
    test_fraction: float = Field(default=0.3, gt=0, lt=1, description="tail of the target held out for testing")
    few_shot_fraction: float = Field(default=0.1, gt=0, le=1, description="share of target training windows used")
    pretrain_steps: int = Field(default=300, ge=0)
    finetune_steps: int = Field(default=100, ge=0)
    lr: float = Field(default=3e-3, gt=0)
    out: str | None = Field(default=None, description="write the forecast after the target's end here (.npy)")
    seed: int = 0


class TtmForecastOutput(BaseModel):
    """Result of the ``ttm_forecast`` tool: test errors of TTM and of the last-value baseline."""

    mode: str
    parameters: int
    test_windows: int
    finetune_windows: int
    ttm_mse: float
    last_value_mse: float
    mse_ratio_vs_last_value: float
    pretrain_loss_first: float | None
    pretrain_loss_last: float | None
    forecast: str | None


@tool(
    name="ttm_forecast",
    family="domains",
    paper=_PAPER,
    tags=("time-series", "forecasting", "zero-shot", "few-shot", "pre-training", "transfer", "needs:series"),
    heavy=True,
)
def ttm_forecast(args: TtmForecastInput) -> TtmForecastOutput:
    """Pre-train a tiny TinyTimeMixer on source series and forecast a target series zero-shot or few-shot.

    The target's tail (``test_fraction``) is the test period; few-shot mode fine-tunes decoder and head (backbone
    frozen) on ``few_shot_fraction`` of the windows before it. Reports test MSE against the last-value baseline.
    """
    import numpy as np

    shape = TtmShape(
        context_length=args.context_length,
        prediction_length=args.prediction_length,
        patch_length=args.patch_length,
        resolutions=max(3, args.target_resolution + 1),
    )
    source = _as_series_list(load_array(args.source, args.source_key), "source")
    target = _as_series_list(load_array(args.target, args.target_key), "target")
    if len(target) != 1:
        raise ToolError("target must be one series (T,) or (T, C)", hint="forecast one target series per call")
    series = target[0]
    split = int(series.shape[0] * (1 - args.test_fraction))
    test_past, test_future = _channel_windows(series[split - args.context_length :], shape)
    if test_past.shape[0] == 0:
        raise ToolError(
            f"the target's test period is shorter than one horizon of {args.prediction_length} steps",
            hint="give a longer target series or raise test_fraction",
        )
    seed_all(args.seed)
    model = build_ttm(shape)
    losses = pretrain(model, source, steps=args.pretrain_steps, lr=args.lr, seed=args.seed)
    tune_windows = 0
    if args.mode == "few-shot":
        past, future = few_shot_windows(series[:split], shape, args.few_shot_fraction)
        tune_windows = int(past.shape[0])
        resolution, steps = args.target_resolution, args.finetune_steps
        finetune_head(model, past, future, resolution=resolution, steps=steps, lr=args.lr, seed=args.seed)
    pred = forecast(model, test_past, args.target_resolution)
    ttm_mse = float(np.mean((pred - test_future) ** 2))
    naive_mse = float(np.mean((last_value_forecast(test_past, args.prediction_length) - test_future) ** 2))
    written = None
    if args.out is not None:
        tail = series[-args.context_length :][None]
        written = str(save_array(args.out, forecast(model, tail, args.target_resolution)[0]))
    return TtmForecastOutput(
        mode=args.mode,
        parameters=sum(int(p.numel()) for p in model.parameters()),
        test_windows=int(test_past.shape[0]),
        finetune_windows=tune_windows,
        ttm_mse=ttm_mse,
        last_value_mse=naive_mse,
        mse_ratio_vs_last_value=ttm_mse / naive_mse if naive_mse > 0 else float("inf"),
        pretrain_loss_first=losses[0] if losses else None,
        pretrain_loss_last=losses[-1] if losses else None,
        forecast=written,
    )


def few_shot_windows(history: np.ndarray, shape: TtmShape, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """The most recent ``fraction`` of each channel's training windows (at least one), channels folded into the
    batch: what a forecaster deployed on fresh data would have seen just before the test period."""
    import numpy as np

    pasts, futures = [], []
    for channel in range(history.shape[1]):
        past, future = windows(history[:, [channel]], shape.context_length, shape.prediction_length)
        if past.shape[0] == 0:
            continue
        keep = max(1, round(past.shape[0] * fraction))
        pasts.append(past[-keep:])
        futures.append(future[-keep:])
    if not pasts:
        return np.zeros((0, shape.context_length, 1)), np.zeros((0, shape.prediction_length, 1))
    return np.concatenate(pasts), np.concatenate(futures)


def _channel_windows(series: np.ndarray, shape: TtmShape) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping multichannel test windows ``(N, context, C)`` / ``(N, horizon, C)``."""
    import numpy as np

    context, horizon = shape.context_length, shape.prediction_length
    starts = range(0, series.shape[0] - context - horizon + 1, horizon)
    if not starts:
        return np.zeros((0, context, series.shape[1])), np.zeros((0, horizon, series.shape[1]))
    past = np.stack([series[s : s + context] for s in starts])
    future = np.stack([series[s + context : s + context + horizon] for s in starts])
    return past, future
