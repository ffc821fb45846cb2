"""Efficiently robustify pre-trained models (Jain et al., ICCV 2023): a robust small model teaches part of a large one.

*Efficiently Robustify Pre-trained Models.* Making a large pre-trained model robust by full adversarial or augmented
training is expensive. The paper instead (1) makes a *small* model robust (trained with the perturbations), then
(2) fine-tunes only a subset of the large model's parameters with two distillation terms: towards the robust small
model on perturbed inputs, and towards the frozen original large model on clean inputs, so clean accuracy is kept:

    L = λ_rob · T²·KL(p_small(x̃)^T ‖ p_large(x̃)^T) + λ_clean · T²·KL(p_orig(x)^T ‖ p_large(x)^T) [+ β · CE(x, y)]

with ``x̃`` a perturbed copy of ``x`` (here additive Gaussian noise of std σ, the perturbation the toy benchmark uses;
callers can pass their own perturbation function). Exact properties (tests): parameters outside the subset are
bit-identical after training; when the large model, its original and the small teacher coincide the loss and the
update are zero; with ``λ_rob = λ_clean = 0, β = 1`` the objective is plain cross-entropy. Paper: the two-teacher
objective and subset tuning. Library: PyTorch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_distill.core.kd import soft_kl

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "RobustifyInput",
    "RobustifyOutput",
    "RobustifyResult",
    "gaussian_noise",
    "robustify",
    "robustify_large",
    "select_subset",
    "train_robust_small",
]

_PAPER = "Jain et al., ICCV 2023: Efficiently Robustify Pre-trained Models"

Perturb = Callable[["torch.Tensor", int], "torch.Tensor"]
"""A perturbation: ``perturb(x, step)`` returns a perturbed copy of the batch."""


def gaussian_noise(std: float, seed: int = 0) -> Perturb:
    """Additive Gaussian noise of standard deviation ``std`` (seeded per step, reproducible)."""
    import torch

    def perturb(x: torch.Tensor, step: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed * 100_003 + step)
        return x + std * torch.randn(x.shape, generator=gen)

    return perturb


def select_subset(model: nn.Module, patterns: Sequence[str]) -> list[str]:
    """Names of the parameters containing any of ``patterns`` (at least one must match)."""
    names = [n for n, _ in model.named_parameters() if any(p in n for p in patterns)]
    if not names:
        available = [n for n, _ in model.named_parameters()]
        raise ToolError(f"no parameter matches {list(patterns)}", hint=f"parameters are: {available[:12]}")
    return names


def train_robust_small(
    small: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    perturb: Perturb,
    *,
    steps: int,
    lr: float = 1e-2,
    batch_size: int = 64,
    seed: int = 0,
) -> list[float]:
    """Step 1: train the small model with cross-entropy on perturbed (and clean) inputs."""
    import torch
    import torch.nn.functional as F

    from malot_distill.core.train import batches, fit

    order = batches(x.shape[0], batch_size, steps, seed)

    def loss_fn(step: int) -> torch.Tensor:
        xb, yb = x[order[step]], y[order[step]]
        return F.cross_entropy(small(torch.cat([xb, perturb(xb, step)])), torch.cat([yb, yb]))

    small.train()
    losses = fit(small.parameters(), loss_fn, steps=steps, lr=lr)
    small.eval()
    return losses


@dataclass
class RobustifyResult:
    """Per-step losses and the names of the tuned parameters."""

    tuned: list[str]
    losses: list[float] = field(default_factory=list)


def robustify_large(
    large: nn.Module,
    small: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None,
    perturb: Perturb,
    subset: Sequence[str],
    *,
    steps: int,
    lr: float = 1e-3,
    temperature: float = 1.0,
    robust_weight: float = 1.0,
    clean_weight: float = 1.0,
    ce_weight: float = 0.0,
    batch_size: int = 64,
    seed: int = 0,
) -> RobustifyResult:
    """Step 2: tune only the parameters named in ``subset`` (see :func:`select_subset`) of ``large`` in place."""
    import torch
    import torch.nn.functional as F

    from malot_distill.core.train import batches, fit, frozen_copy

    if ce_weight and y is None:
        raise ToolError("ce_weight > 0 needs labels y")
    original = frozen_copy(large)
    small = small.eval()
    params = dict(large.named_parameters())
    unknown = set(subset) - set(params)
    if unknown:
        raise ToolError(f"subset names parameters the large model lacks: {sorted(unknown)[:5]}")
    flags = {n: p.requires_grad for n, p in params.items()}
    for name, param in params.items():
        param.requires_grad_(name in subset)
    order = batches(x.shape[0], batch_size, steps, seed)

    def loss_fn(step: int) -> torch.Tensor:
        xb = x[order[step]]
        noisy = perturb(xb, step)
        with torch.no_grad():
            t_rob = small(noisy)
            t_clean = original(xb)
        loss = robust_weight * soft_kl(large(noisy), t_rob, temperature).mean()
        clean_logits = large(xb)
        loss = loss + clean_weight * soft_kl(clean_logits, t_clean, temperature).mean()
        if ce_weight and y is not None:
            loss = loss + ce_weight * F.cross_entropy(clean_logits, y[order[step]])
        return loss

    large.train()
    try:
        losses = fit([params[n] for n in subset], loss_fn, steps=steps, lr=lr)
    finally:
        for name, flag in flags.items():
            params[name].requires_grad_(flag)
    large.eval()
    return RobustifyResult(tuned=list(subset), losses=losses)


class RobustifyInput(BaseModel):
    """Arguments of ``robustify``."""

    large: str = Field(description="the large pre-trained model (distill MLP file)")
    small: str = Field(description="the small model (distill MLP file), made robust first unless small_steps = 0")
    data: str = Field(description=".safetensors with x, y (optional x_test, y_test for the report)")
    out: str = Field(description="where to write the robustified large model (.safetensors)")
    subset: list[str] = Field(default=["head"], min_length=1, description="tune parameters whose name contains these")
    noise_std: float = Field(default=1.0, gt=0, description="std of the Gaussian perturbation")
    small_steps: int = Field(default=300, ge=0, description="steps making the small model robust (0: it already is)")
    steps: int = Field(default=300, ge=1, description="steps tuning the large model's subset")
    lr: float = Field(default=1e-3, gt=0)
    temperature: float = Field(default=1.0, gt=0)
    robust_weight: float = Field(default=1.0, ge=0)
    clean_weight: float = Field(default=1.0, ge=0)
    ce_weight: float = Field(default=0.0, ge=0)
    batch_size: int = Field(default=64, ge=1)
    seed: int = 0


class RobustifyOutput(BaseModel):
    """Result of ``robustify``: accuracies (on x_test/y_test if given, else x/y) before and after."""

    out: str
    tuned: list[str]
    tuned_fraction: float = Field(description="tuned parameters / all parameters of the large model")
    clean_before: float
    clean_after: float
    noisy_before: float
    noisy_after: float
    small_noisy: float


@tool(
    name="robustify",
    family="distill",
    paper=_PAPER,
    tags=("distillation", "robustness", "transfer", "needs:large", "needs:small", "needs:data"),
)
def robustify(args: RobustifyInput) -> RobustifyOutput:
    """Make a large model robust to noise cheaply: a noise-robust small model teaches a subset of its parameters.

    Trains the small model with Gaussian-noise augmentation (unless ``small_steps = 0``), then tunes only the large
    model's parameters matching ``subset`` by KD from the small model on noisy inputs and from the frozen original
    large model on clean inputs.
    """
    from malot_distill.core.data import check_labels, load_tensors, require
    from malot_distill.core.mlp import load_mlp, save_mlp
    from malot_distill.core.train import accuracy

    large, small = load_mlp(args.large), load_mlp(args.small)
    ls, ss = getattr(large, "sizes", []), getattr(small, "sizes", [])
    if ls[0] != ss[0] or ls[-1] != ss[-1]:
        raise ToolError(f"large (sizes {ls}) and small (sizes {ss}) must share input width and classes")
    tensors = load_tensors(args.data)
    x = require(tensors, "x", dim=2)
    y = check_labels(x, require(tensors, "y"), ls[-1])
    if x.shape[1] != ls[0]:
        raise ToolError(f"data has {x.shape[1]} features, the models take {ls[0]}")
    x_eval, y_eval = x, y
    if "x_test" in tensors:
        x_eval = require(tensors, "x_test", dim=2)
        y_eval = check_labels(x_eval, require(tensors, "y_test"), ls[-1])
    noisy_eval = gaussian_noise(args.noise_std, seed=args.seed + 999)(x_eval, 0)
    perturb = gaussian_noise(args.noise_std, seed=args.seed)
    if args.small_steps:
        train_robust_small(small, x, y, perturb, steps=args.small_steps, batch_size=args.batch_size, seed=args.seed)
    clean_before, noisy_before = accuracy(large, x_eval, y_eval), accuracy(large, noisy_eval, y_eval)
    subset = select_subset(large, args.subset)
    robustify_large(
        large,
        small,
        x,
        y,
        gaussian_noise(args.noise_std, seed=args.seed + 1),
        subset,
        steps=args.steps,
        lr=args.lr,
        temperature=args.temperature,
        robust_weight=args.robust_weight,
        clean_weight=args.clean_weight,
        ce_weight=args.ce_weight,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    save_mlp(large, args.out)
    params = dict(large.named_parameters())
    total = sum(p.numel() for p in params.values())
    return RobustifyOutput(
        out=args.out,
        tuned=subset,
        tuned_fraction=sum(params[n].numel() for n in subset) / total,
        clean_before=clean_before,
        clean_after=accuracy(large, x_eval, y_eval),
        noisy_before=noisy_before,
        noisy_after=accuracy(large, noisy_eval, y_eval),
        small_noisy=accuracy(small, noisy_eval, y_eval),
    )
