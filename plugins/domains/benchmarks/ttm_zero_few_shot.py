"""TTM claim: a tiny pre-trained TinyTimeMixer forecasts unseen series zero-shot better than naive baselines, and
few-shot fine-tuning (backbone frozen) beats training the same model from scratch on the same few windows.

Toy-scale reproduction of Ekambaram et al. (2024). Pre-training: many synthetic seasonal series (sums of two sines
with periods in [6, 64], noise) with downsampling augmentation and resolution tokens. Target: an unseen seasonal
series (periods in [10, 50], more noise, two channels); its last 30% is the test period, evaluated on
non-overlapping windows. Few-shot: the most recent 3% of the target's training windows (about 25 windows per
channel). Baselines in the same run: last value (the naive forecast), a ridge autoregression fitted on the same
few-shot windows (a linear model is what a reviewer tries first on sines), and the same TinyTimeMixer trained from
scratch on those windows (all parameters, the same steps).

    python plugins/domains/benchmarks/ttm_zero_few_shot.py --quick --out ttm.json

Figures (test MSE, mean over seeds): ``zero_shot_mse``, ``few_shot_mse``, ``scratch_mse``, ``ridge_ar_mse``,
``last_value_mse`` and the ratios ``zero_shot_vs_last_value``, ``few_shot_vs_scratch``, ``few_shot_vs_ridge_ar``.
"""

from __future__ import annotations

import os
import time
from typing import Any

os.environ.setdefault("TSFM_PYTHON_LOGGING_LEVEL", "WARNING")

import numpy as np
import torch
from malot_domains.core import adam_fit, seed_all
from malot_domains.core.synthetic import seasonal_series
from malot_domains.ttm import (
    TtmShape,
    _channel_windows,
    _mse_loss,
    _tensor,
    build_ttm,
    few_shot_windows,
    finetune_head,
    forecast,
    last_value_forecast,
    pretrain,
)
from sklearn.linear_model import Ridge

from malot.benchmarking import benchmark_args, summarize, write_result


def one_seed(seed: int, pretrain_steps: int, sources: int) -> dict[str, Any]:
    """Pre-train, then zero-shot, few-shot, scratch and the baselines on one unseen target."""
    start = time.perf_counter()
    seed_all(seed)
    shape = TtmShape()
    source = [seasonal_series(10_000 * seed + s, 400, 1, periods=(6, 64), noise=0.05) for s in range(sources)]
    model = build_ttm(shape)
    losses = pretrain(model, source, steps=pretrain_steps, lr=5e-3, stride=4, seed=seed)
    target = seasonal_series(777 + seed, 1200, 2, periods=(10, 50), noise=0.1)
    split = int(1200 * 0.7)
    test_past, test_future = _channel_windows(target[split - shape.context_length :], shape)

    def mse(pred: np.ndarray) -> float:
        return float(np.mean((pred - test_future) ** 2))

    zero = mse(forecast(model, test_past))
    past, future = few_shot_windows(target[:split], shape, 0.03)
    finetune_head(model, past, future, steps=100, seed=seed)
    few = mse(forecast(model, test_past))
    scratch_model = build_ttm(shape)
    generator = seed_all(seed + 1)
    scratch_model.train()
    tokens = torch.zeros(past.shape[0], dtype=torch.long)
    adam_fit(
        scratch_model.parameters(),
        _mse_loss(scratch_model, _tensor(past), _tensor(future), tokens, generator),
        steps=100,
        lr=3e-3,
    )
    scratch_model.eval()
    scratch = mse(forecast(scratch_model, test_past))
    ridge = Ridge(alpha=1e-2).fit(past[:, :, 0], future[:, :, 0])
    ridge_pred = np.stack([ridge.predict(test_past[:, :, c]) for c in range(test_past.shape[2])], axis=-1)
    return {
        "seed": seed,
        "zero_shot_mse": zero,
        "few_shot_mse": few,
        "scratch_mse": scratch,
        "ridge_ar_mse": mse(ridge_pred),
        "last_value_mse": mse(last_value_forecast(test_past, shape.prediction_length)),
        "few_shot_windows": int(past.shape[0]),
        "test_windows": int(test_past.shape[0]),
        "parameters": sum(int(p.numel()) for p in model.parameters()),
        "pretrain_loss_first_last": [losses[0], losses[-1]],
        "seconds": time.perf_counter() - start,
    }


def main() -> None:
    args = benchmark_args(
        __doc__, default_out="plugins/domains/benchmarks/results/ttm_zero_few_shot.json", seeds=3, quick_seeds=2
    )
    steps, sources = (100, 16) if args.quick else (400, 64)
    runs = [one_seed(seed, steps, sources) for seed in args.seed_list]
    keys = ["zero_shot_mse", "few_shot_mse", "scratch_mse", "ridge_ar_mse", "last_value_mse"]
    stats = {k: summarize([r[k] for r in runs]) for k in keys}
    figures = {k: stats[k]["mean"] for k in keys}
    figures["zero_shot_vs_last_value"] = figures["zero_shot_mse"] / figures["last_value_mse"]
    figures["few_shot_vs_scratch"] = figures["few_shot_mse"] / figures["scratch_mse"]
    figures["few_shot_vs_ridge_ar"] = figures["few_shot_mse"] / figures["ridge_ar_mse"]
    write_result(
        args.out,
        figures,
        details={"quick": args.quick, "pretrain_steps": steps, "source_series": sources, "stats": stats, "runs": runs},
    )


if __name__ == "__main__":
    main()
