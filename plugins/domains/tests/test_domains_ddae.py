"""DDAE: diffusion U-Net features (diffusers) probed linearly on sklearn's shipped 8x8 digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from malot_domains.ddae import block_names, extract_features, tiny_unet, train_ddpm  # noqa: E402

from malot.errors import ToolError  # noqa: E402
from malot.tools import get_registry  # noqa: E402


def _digits(classes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    keep = np.isin(digits.target, classes)
    return digits.images[keep].astype(np.float32), digits.target[keep]


def test_features_are_pooled_block_outputs_deterministic_for_a_seed() -> None:
    torch.manual_seed(0)
    unet = tiny_unet(8, 1, 8)
    images = np.random.default_rng(0).uniform(-1, 1, size=(6, 1, 8, 8)).astype(np.float32)
    assert block_names(unet) == ["down.0", "down.1", "mid", "up.0", "up.1"]
    widths = {"down.0": 8, "down.1": 16, "mid": 16, "up.0": 16, "up.1": 8}
    for block, width in widths.items():
        assert extract_features(unet, images, timestep=50, block=block).shape == (6, width)
    a = extract_features(unet, images, timestep=50, block="up.0", seed=3)
    b = extract_features(unet, images, timestep=50, block="up.0", seed=3)
    c = extract_features(unet, images, timestep=50, block="up.0", seed=4)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    with pytest.raises(ToolError, match="unknown U-Net block"):
        extract_features(unet, images, timestep=50, block="up.9")
    with pytest.raises(ToolError, match="timestep"):
        extract_features(unet, images, timestep=1000, block="mid")


def test_denoising_training_lowers_the_ddpm_loss() -> None:
    torch.manual_seed(0)
    images, _ = _digits((0, 1))
    unet = tiny_unet(8, 1, 8)
    losses = train_ddpm(unet, images[:, None] / 8.0 - 1.0, steps=25, batch=32)
    assert np.mean(losses[-5:]) < np.mean(losses[:5])


def test_tool_without_training_equals_the_random_unet_and_probes_beat_chance(tmp_path: Path) -> None:
    images, labels = _digits((0, 1, 7))
    np.savez(tmp_path / "digits.npz", X=images, y=labels)
    args = {"data": str(tmp_path / "digits.npz"), "width": 8, "timestep": 50}
    registry = get_registry()
    untrained = registry.run_sync("diffusion_features", {**args, "steps": 0}, isolation="inline")
    # zero DDPM steps: the DDAE network is the random-init baseline, feature for feature
    assert untrained.ddae_accuracy == untrained.random_unet_accuracy  # type: ignore[attr-defined]
    trained = registry.run_sync("diffusion_features", {**args, "steps": 15}, isolation="inline")
    assert trained.feature_dim == 16  # type: ignore[attr-defined]
    assert trained.ddae_accuracy > trained.chance + 0.2  # type: ignore[attr-defined]


def test_bad_inputs_give_clear_errors(tmp_path: Path) -> None:
    registry = get_registry()
    images, labels = _digits((0, 1))
    bad = images.copy()
    bad[0, 0, 0] = np.nan
    cases = {
        "NaN": {"X": bad, "y": labels},
        "square": {"X": images[:, :, :6], "y": labels},
        "entries": {"X": images, "y": labels[:-1]},
    }
    for message, arrays in cases.items():
        path = tmp_path / f"{message}.npz"
        np.savez(path, **arrays)
        with pytest.raises(ToolError, match=message):
            registry.run_sync("diffusion_features", {"data": str(path), "steps": 0}, isolation="inline")
    np.savez(tmp_path / "ok.npz", X=images, y=labels)
    with pytest.raises(ToolError, match="multiple of 8"):
        registry.run_sync("diffusion_features", {"data": str(tmp_path / "ok.npz"), "width": 12}, isolation="inline")
    with pytest.raises(ToolError, match="unknown U-Net block"):
        registry.run_sync(
            "diffusion_features", {"data": str(tmp_path / "ok.npz"), "block": "side", "steps": 0}, isolation="inline"
        )
