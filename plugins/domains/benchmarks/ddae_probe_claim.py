"""DDAE claim: a diffusion U-Net trained only to denoise learns features a linear probe separates, better than the
same U-Net's random features, with the noise level mattering (intermediate timesteps best in the paper).

Data: scikit-learn's shipped 8x8 handwritten digits (1797 images, 10 classes; real data, offline). A tiny
``diffusers.UNet2DModel`` (widths 16/32) is trained with the DDPM objective on all images without labels; features
are the global-average-pooled output of the first up block (``up.0``) at several timesteps; a logistic-regression
probe is fitted on 70% and scored on 30%. Baselines in the same run: the same U-Net with its random initial weights
(same timesteps, block and noise), and the raw pixels (the simple baseline; on 8x8 digits it is strong).

    python plugins/domains/benchmarks/ddae_probe_claim.py --quick --out ddae.json

Figures: probe accuracy of ``ddae_accuracy`` (best timestep, chosen on the held-out split: say so when reading it),
``ddae_accuracy_t100`` (a fixed timestep, chosen before the run), ``random_unet_accuracy`` (at t=100), and
``pixel_accuracy``; per-timestep accuracies under ``details``.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import numpy as np
from malot_domains.core import seed_all
from malot_domains.ddae import extract_features, linear_probe, tiny_unet, train_ddpm
from sklearn.datasets import load_digits

from malot.benchmarking import benchmark_args, summarize, write_result


def one_seed(seed: int, steps: int, timesteps: list[int]) -> dict[str, Any]:
    """Train the DDPM once and probe every timestep; baselines on the same split."""
    start = time.perf_counter()
    digits = load_digits()
    images = (digits.images.astype(np.float32) / 16.0 * 2 - 1)[:, None]
    labels = digits.target
    order = np.random.default_rng(seed).permutation(images.shape[0])
    cut = int(0.7 * images.shape[0])
    train, test = order[:cut], order[cut:]
    seed_all(seed)
    unet = tiny_unet(8, 1, 16)
    random_unet = copy.deepcopy(unet)
    losses = train_ddpm(unet, images, steps=steps, batch=64, seed=seed)

    def probe(model: Any, t: int) -> float:
        feats = extract_features(model, images, timestep=t, block="up.0", seed=seed)
        return linear_probe(feats[train], labels[train], feats[test], labels[test])

    per_t = {str(t): probe(unet, t) for t in timesteps}
    flat = images.reshape(images.shape[0], -1)
    return {
        "seed": seed,
        "per_timestep": per_t,
        "ddae_best": max(per_t.values()),
        "ddae_t100": per_t["100"],
        "random_unet_t100": probe(random_unet, 100),
        "pixels": linear_probe(flat[train], labels[train], flat[test], labels[test]),
        "denoising_loss_first_last": [losses[0], losses[-1]],
        "seconds": time.perf_counter() - start,
    }


def main() -> None:
    args = benchmark_args(
        __doc__, default_out="plugins/domains/benchmarks/results/ddae_probe_claim.json", seeds=3, quick_seeds=1
    )
    steps, timesteps = (200, [100]) if args.quick else (800, [10, 100, 300, 600])
    runs = [one_seed(seed, steps, timesteps) for seed in args.seed_list]
    stats = {k: summarize([r[k] for r in runs]) for k in ["ddae_best", "ddae_t100", "random_unet_t100", "pixels"]}
    per_t = {t: summarize([r["per_timestep"][str(t)] for r in runs]) for t in timesteps}
    figures = {
        "ddae_accuracy": stats["ddae_best"]["mean"],
        "ddae_accuracy_t100": stats["ddae_t100"]["mean"],
        "random_unet_accuracy": stats["random_unet_t100"]["mean"],
        "pixel_accuracy": stats["pixels"]["mean"],
    }
    write_result(
        args.out,
        figures,
        details=dict(quick=args.quick, steps=steps, stats=stats, per_timestep=per_t, runs=runs),
    )


if __name__ == "__main__":
    main()
