"""Denoising Diffusion Autoencoders are unified self-supervised learners (Xiang et al., ICCV 2023; DDAE).

A diffusion model trained only to denoise (the DDPM objective ``E ||ε - ε_θ(√ᾱ_t x₀ + √(1-ᾱ_t) ε, t)||²``, Ho et
al. 2020, Eq. 14) learns linearly separable features on the way: DDAE noises a clean image to a chosen timestep
``t``, runs the U-Net once, and global-average-pools the activations of one block; a linear probe on these features
classifies. The paper finds the best features at intermediate noise levels and in the U-Net's up (decoder) path.

What is the library's: the U-Net (``diffusers.UNet2DModel``, a tiny config here) and the noise schedule and
forward noising (``diffusers.DDPMScheduler``), and the logistic-regression probe (scikit-learn). What is ours: the
DDPM training loop, the feature extraction (timestep, block, pooling, fixed noise), and the probe protocol with its
baselines (the same U-Net with its random initial weights, and raw pixels).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_domains.core import adam_fit, load_array, require_finite, require_labels, seed_all

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

__all__ = [
    "DiffusionFeaturesInput",
    "DiffusionFeaturesOutput",
    "block_names",
    "diffusion_features",
    "extract_features",
    "linear_probe",
    "tiny_unet",
    "train_ddpm",
]

TIMESTEPS = 1000


def tiny_unet(image_size: int, channels: int = 1, width: int = 16) -> nn.Module:
    """A two-level ``diffusers.UNet2DModel`` (widths ``width, 2*width``, one ResNet layer per block)."""
    from diffusers import UNet2DModel

    if image_size % 2:
        raise ToolError(f"image size {image_size} must be even for the two-level U-Net", hint="pad the images")
    unet: nn.Module = UNet2DModel(  # type: ignore[no-untyped-call, assignment]
        sample_size=image_size,
        in_channels=channels,
        out_channels=channels,
        block_out_channels=(width, 2 * width),
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        layers_per_block=1,
        norm_num_groups=8,
    )
    return unet


def _scheduler() -> Any:
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=TIMESTEPS)  # type: ignore[no-untyped-call]


def train_ddpm(
    unet: nn.Module, images: np.ndarray, *, steps: int, lr: float = 2e-3, batch: int = 32, seed: int = 0
) -> list[float]:
    """Train ``unet`` as a DDPM noise predictor on ``images`` ``(N, C, H, W)`` in ``[-1, 1]`` (no labels)."""
    import torch

    generator = seed_all(seed)
    scheduler = _scheduler()
    data = torch.as_tensor(images, dtype=torch.float32)

    def loss(step: int) -> torch.Tensor:
        pick = torch.randint(0, data.shape[0], (min(batch, data.shape[0]),), generator=generator)
        clean = data[pick]
        noise = torch.randn(clean.shape, generator=generator)
        t = torch.randint(0, TIMESTEPS, (clean.shape[0],), generator=generator)
        pred = unet(scheduler.add_noise(clean, noise, t), t).sample
        return torch.nn.functional.mse_loss(pred, noise)

    unet.train()
    try:
        return adam_fit(unet.parameters(), loss, steps=steps, lr=lr)
    finally:
        unet.eval()


def block_names(unet: nn.Module) -> list[str]:
    """Blocks whose pooled output can serve as features: ``down.i``, ``mid`` and ``up.i``."""
    downs = [f"down.{i}" for i in range(len(unet.down_blocks))]  # type: ignore[arg-type]
    ups = [f"up.{i}" for i in range(len(unet.up_blocks))]  # type: ignore[arg-type]
    return [*downs, "mid", *ups]


def _block(unet: nn.Module, name: str) -> nn.Module:
    if name == "mid":
        return unet.mid_block  # type: ignore[return-value]
    kind, _, index = name.partition(".")
    blocks = {"down": unet.down_blocks, "up": unet.up_blocks}.get(kind)
    if blocks is None or not index.isdigit() or int(index) >= len(blocks):  # type: ignore[arg-type]
        raise ToolError(f"unknown U-Net block {name!r}", hint=f"choose one of {block_names(unet)}")
    block: nn.Module = blocks[int(index)]  # type: ignore[index, assignment]
    return block


def extract_features(
    unet: nn.Module, images: np.ndarray, *, timestep: int, block: str, seed: int = 0, batch: int = 128
) -> np.ndarray:
    """DDAE features: noise ``images`` to ``timestep`` with seeded noise, run the U-Net once, and global-average-pool
    the output of ``block``; returns ``(N, channels of block)``."""
    import numpy as np
    import torch

    if not 0 <= timestep < TIMESTEPS:
        raise ToolError(f"timestep {timestep} is outside [0, {TIMESTEPS})", hint="pick an intermediate one, e.g. 100")
    module = _block(unet, block)
    captured: list[torch.Tensor] = []

    def hook(_: nn.Module, __: Any, output: Any) -> None:
        hidden = output[0] if isinstance(output, tuple) else output
        captured.append(hidden.mean(dim=(2, 3)))

    handle = module.register_forward_hook(hook)
    scheduler = _scheduler()
    generator = torch.Generator().manual_seed(seed)
    data = torch.as_tensor(images, dtype=torch.float32)
    unet.eval()
    try:
        with torch.no_grad():
            for start in range(0, data.shape[0], batch):
                clean = data[start : start + batch]
                noise = torch.randn(clean.shape, generator=generator)
                t = torch.full((clean.shape[0],), timestep, dtype=torch.long)
                unet(scheduler.add_noise(clean, noise, t), t)
    finally:
        handle.remove()
    return np.concatenate([c.numpy() for c in captured])


def linear_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray) -> float:
    """Test accuracy of a standardised multinomial logistic regression fitted on the training features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
    probe.fit(train_x, train_y)
    return float(probe.score(test_x, test_y))


def _images(array: np.ndarray) -> np.ndarray:
    import numpy as np

    if array.ndim == 3:
        array = array[:, None]
    if array.ndim != 4:
        raise ToolError(f"images have shape {tuple(array.shape)}; expected (N, H, W) or (N, C, H, W)")
    if array.shape[2] != array.shape[3]:
        raise ToolError(f"images are {array.shape[2]}x{array.shape[3]}; expected square images", hint="crop or pad")
    require_finite("images", array)
    low, high = float(array.min()), float(array.max())
    scaled = (array - low) / (high - low) * 2 - 1 if high > low else np.zeros_like(array)
    out: np.ndarray = scaled.astype(np.float32)
    return out


_PAPER = "Denoising Diffusion Autoencoders are Unified Self-supervised Learners (Xiang et al., ICCV 2023)"


class DiffusionFeaturesInput(BaseModel):
    """Arguments of the ``diffusion_features`` tool."""

    data: str = Field(description=".npz with X (N, H, W) or (N, C, H, W) images and y (N,) labels for the probe")
    train_fraction: float = Field(default=0.7, gt=0, lt=1, description="share of images the probe is fitted on")
    timestep: int = Field(default=100, ge=0, lt=TIMESTEPS, description="noise level the features are taken at")
    block: str = Field(default="up.0", description="U-Net block to pool: down.i, mid or up.i")
    width: int = Field(default=16, gt=0, description="channels of the U-Net's first level (a multiple of 8)")
    steps: int = Field(default=300, ge=0, description="DDPM training steps (labels are not used)")
    lr: float = Field(default=2e-3, gt=0)
    baseline: Literal["all", "none"] = Field(default="all", description="also probe random-init U-Net and pixels")
    seed: int = 0


class DiffusionFeaturesOutput(BaseModel):
    """Linear-probe accuracies of DDAE features and of the baselines."""

    ddae_accuracy: float
    random_unet_accuracy: float | None
    pixel_accuracy: float | None
    chance: float
    feature_dim: int
    final_denoising_loss: float | None


@tool(
    name="diffusion_features",
    family="domains",
    paper=_PAPER,
    tags=("diffusion", "self-supervised", "representation", "linear-probe", "images", "transfer"),
    heavy=True,
)
def diffusion_features(args: DiffusionFeaturesInput) -> DiffusionFeaturesOutput:
    """Train a tiny DDPM U-Net on images without labels, then linearly probe its pooled block features.

    Features come from one U-Net block at one noise level (DDAE); the probe is a logistic regression. Baselines:
    the same U-Net with its random initial weights, and the raw pixels.
    """
    import copy

    import numpy as np

    if args.width % 8:
        raise ToolError(f"width {args.width} must be a multiple of 8 (group normalisation)", hint="use 8, 16 or 32")
    images = _images(load_array(args.data, "X"))
    labels = require_labels("y", load_array(args.data, "y"), images.shape[0])
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(images.shape[0])
    cut = round(images.shape[0] * args.train_fraction)
    train, test = order[:cut], order[cut:]
    if len(set(labels[train].tolist())) < 2 or test.shape[0] == 0:
        raise ToolError("the probe needs two classes in its training part and a test part", hint="give more images")
    seed_all(args.seed)
    unet = tiny_unet(images.shape[2], images.shape[1], args.width)
    random_unet = copy.deepcopy(unet)
    _block(unet, args.block)
    losses = train_ddpm(unet, images, steps=args.steps, lr=args.lr, seed=args.seed)

    def probe(model: nn.Module) -> tuple[float, int]:
        feats = extract_features(model, images, timestep=args.timestep, block=args.block, seed=args.seed)
        return linear_probe(feats[train], labels[train], feats[test], labels[test]), int(feats.shape[1])

    ddae, dim = probe(unet)
    random_acc = pixel_acc = None
    if args.baseline == "all":
        random_acc = probe(random_unet)[0]
        flat = images.reshape(images.shape[0], -1)
        pixel_acc = linear_probe(flat[train], labels[train], flat[test], labels[test])
    return DiffusionFeaturesOutput(
        ddae_accuracy=ddae,
        random_unet_accuracy=random_acc,
        pixel_accuracy=pixel_acc,
        chance=float(np.bincount(labels[test]).max() / test.shape[0]),
        feature_dim=dim,
        final_denoising_loss=losses[-1] if losses else None,
    )
