"""Noise as a source domain in semi-supervised heterogeneous domain adaptation (SHDA; Yao et al., 2025).

SHDA: labelled source samples and a target domain with *different features*, few target labels, many unlabelled
target samples, and no correspondence between them. The paper's finding is that the source's category and feature
content hardly matter — class-conditional noise from simple distributions works as a source — and that what
transfers is the source's **discriminability** (how separable its classes are) and **transferability** (how well it
aligns with the target in a common space). Its Knowledge Transfer Framework (KTF) projects both domains into a common
subspace, trains one shared classifier on labelled source and target samples, and aligns the domains there.

This tool implements (1) the noise source: ``C`` Gaussians ``N(μ_c, I)`` in ``d_s`` dimensions whose means lie on a
scaled simplex with every pairwise distance exactly equal to ``separability``; (2) the KTF learner: projections
``f_s, f_t`` into ``R^h`` (linear + LeakyReLU), a shared linear classifier ``g``, and the loss
``CE(g f_s(x_s), y_s) + CE(g f_t(x_l), y_l) + λ_m·MMD²(f_s(X_s), f_t(X_t)) + λ_c·Σ_c ‖μ̄_c^s − μ̄_c^t‖²`` (Gaussian
multi-bandwidth MMD for the marginal alignment, on random subsets of ``mmd_batch`` points per domain each step;
class-mean alignment with the labelled target samples). The paper's
part: the noise source and the framework; the library's (torch): the networks and the optimiser.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_fewshot.core.arrays import as_labels, as_matrix

if TYPE_CHECKING:
    import numpy as np
    import torch
    from numpy.typing import NDArray

__all__ = ["NoiseShdaInput", "NoiseShdaOutput", "ShdaResult", "mmd2", "noise_source", "noise_source_shda", "shda_fit"]

_PAPER = (
    "Noise May Contain Transferable Knowledge: Understanding Semi-supervised Heterogeneous Domain Adaptation from an"
    " Empirical Perspective (Yao, Zhang, Zhang, Jin, Yang; 2025)"
)


def noise_source(
    n_classes: int, dim: int, per_class: int, separability: float, seed: int = 0
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.float64]]:
    """Class-conditional Gaussian noise: samples, labels, and the class means (pairwise distance = separability)."""
    import numpy as np

    if dim < n_classes:
        raise ToolError(f"the noise dimension ({dim}) must be at least the number of classes ({n_classes})")
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.normal(size=(dim, n_classes)))  # orthonormal columns: a random simplex orientation
    means = separability / np.sqrt(2.0) * basis.T
    labels = np.repeat(np.arange(n_classes), per_class)
    samples = means[labels] + rng.normal(size=(len(labels), dim))
    return samples, labels.astype(np.int64), means


def mmd2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Biased squared MMD with a sum of Gaussian kernels at bandwidths 1, 2, 4, 8, 16 × the median distance."""
    import torch

    both = torch.cat([a, b])
    d = torch.cdist(both, both).pow(2)
    scale = d.detach().median().clamp_min(1e-6)
    k = sum(torch.exp(-d / (scale * f)) for f in (1.0, 2.0, 4.0, 8.0, 16.0))
    assert isinstance(k, torch.Tensor)
    n = len(a)
    return k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean()


@dataclass
class ShdaResult:
    """Predicted labels and probabilities of the unlabelled target samples, and the loss curve."""

    labels: NDArray[np.int64]
    probabilities: NDArray[np.float64]
    losses: list[float]


def shda_fit(
    source_x: NDArray[np.float64] | None,
    source_y: NDArray[np.int64] | None,
    target_x: NDArray[np.float64],
    target_y: NDArray[np.int64],
    unlabelled_x: NDArray[np.float64],
    n_classes: int,
    *,
    hidden: int = 32,
    steps: int = 300,
    lr: float = 1e-2,
    mmd_weight: float = 1.0,
    class_weight: float = 1.0,
    mmd_batch: int = 128,
    seed: int = 0,
) -> ShdaResult:
    """Train the KTF learner (without a source when ``source_x`` is None: the target-only baseline)."""
    import numpy as np
    import torch
    from torch import nn

    from malot_fewshot.core.training import fit_full_batch, seeded

    seeded(seed)
    xt = torch.as_tensor(target_x, dtype=torch.float32)
    yt = torch.as_tensor(target_y)
    xu = torch.as_tensor(unlabelled_x, dtype=torch.float32)
    f_t = nn.Sequential(nn.Linear(target_x.shape[1], hidden), nn.LeakyReLU())
    g = nn.Linear(hidden, n_classes)
    params: list[torch.Tensor] = [*f_t.parameters(), *g.parameters()]
    f_s: nn.Module | None = None
    if source_x is not None and source_y is not None:
        xs = torch.as_tensor(source_x, dtype=torch.float32)
        ys = torch.as_tensor(source_y)
        f_s = nn.Sequential(nn.Linear(source_x.shape[1], hidden), nn.LeakyReLU())
        params += list(f_s.parameters())

    generator = torch.Generator().manual_seed(seed)

    def loss() -> torch.Tensor:
        zt = f_t(xt)
        total = nn.functional.cross_entropy(g(zt), yt)
        if f_s is not None:
            zs = f_s(xs)
            total = total + nn.functional.cross_entropy(g(zs), ys)
            pool = torch.cat([zt, f_t(xu)])
            pick_s = torch.randperm(len(zs), generator=generator)[:mmd_batch]
            pick_t = torch.randperm(len(pool), generator=generator)[:mmd_batch]
            total = total + mmd_weight * mmd2(zs[pick_s], pool[pick_t])
            for c in torch.unique(yt):
                total = total + class_weight * (zs[ys == c].mean(0) - zt[yt == c].mean(0)).pow(2).sum() / n_classes
        return total

    losses = fit_full_batch(params, loss, steps=steps, lr=lr)
    with torch.no_grad():
        prob = torch.softmax(g(f_t(xu)), 1).numpy()
    return ShdaResult(labels=prob.argmax(1).astype(np.int64), probabilities=prob.astype(np.float64), losses=losses)


class NoiseShdaInput(BaseModel):
    """Arguments of the ``noise_source_shda`` tool."""

    target_x: list[list[float]] = Field(description="the few labelled target samples")
    target_y: list[int] = Field(description="their labels (0..C-1; every class at least once)")
    unlabelled_x: list[list[float]] = Field(description="unlabelled target samples to label")
    source_x: list[list[float]] | None = Field(default=None, description="a real labelled source (default: noise)")
    source_y: list[int] | None = None
    noise_dim: int = Field(default=32, gt=0, description="dimension of the generated noise source")
    noise_per_class: int = Field(default=100, gt=0)
    separability: float = Field(default=4.0, ge=0, description="pairwise distance between noise class means")
    mmd_weight: float = Field(default=1.0, ge=0)
    class_weight: float = Field(default=1.0, ge=0)
    steps: int = Field(default=300, gt=0)
    seed: int = 0


class NoiseShdaOutput(BaseModel):
    """Result of the ``noise_source_shda`` tool."""

    labels: list[int]
    probabilities: list[list[float]]
    source: str


@tool(
    name="noise_source_shda",
    family="fewshot",
    paper=_PAPER,
    tags=(
        "domain adaptation",
        "heterogeneous",
        "semi-supervised",
        "few-shot",
        "noise source",
        "needs:few target labels",
    ),
)
def noise_source_shda(args: NoiseShdaInput) -> NoiseShdaOutput:
    """Semi-supervised heterogeneous domain adaptation with a labelled source — by default class-conditional noise.

    Projects source and target into a common space with a shared classifier, aligning them by MMD and class means.
    """
    target_x = as_matrix(args.target_x, "target_x")
    target_y = as_labels(args.target_y, "target_y", length=len(target_x))
    n_classes = int(target_y.max()) + 1
    if n_classes < 2 or len(set(target_y.tolist())) != n_classes:
        raise ToolError("target_y must contain every class 0..C-1 (at least two)", hint="label one sample per class")
    unlabelled = as_matrix(args.unlabelled_x, "unlabelled_x", cols=target_x.shape[1])
    if (args.source_x is None) != (args.source_y is None):
        raise ToolError("give both source_x and source_y, or neither (noise source)")
    if args.source_x is not None:
        source_x = as_matrix(args.source_x, "source_x")
        source_y = as_labels(args.source_y, "source_y", length=len(source_x), n_classes=n_classes)
        origin = "given"
    else:
        source_x, source_y, _ = noise_source(
            n_classes, args.noise_dim, args.noise_per_class, args.separability, args.seed
        )
        origin = f"noise(separability={args.separability})"
    result = shda_fit(
        source_x,
        source_y,
        target_x,
        target_y,
        unlabelled,
        n_classes,
        steps=args.steps,
        mmd_weight=args.mmd_weight,
        class_weight=args.class_weight,
        seed=args.seed,
    )
    return NoiseShdaOutput(
        labels=result.labels.tolist(), probabilities=result.probabilities.round(6).tolist(), source=origin
    )
