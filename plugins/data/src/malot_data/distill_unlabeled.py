"""KRR-ST (Lee et al., "Self-Supervised Dataset Distillation for Transfer Learning", ICLR 2024): distil an
*unlabelled* dataset into a few synthetic inputs with learned target representations, for pre-training.

A self-supervised teacher gives every real input ``x`` a representation ``t(x)``. KRR-ST learns synthetic inputs
``X_s`` and targets ``Y_s`` (initialised from random real inputs and their teacher representations) by a bilevel
objective (§3, Eq. 4–6):

* **outer**: for a feature extractor ``g`` drawn from a model pool, fit a kernel-ridge head from ``g(X_s)`` to
  ``Y_s`` in closed form and ask it to predict the teacher on a real batch:
  ``L = ‖ g(X_r) g(X_s)ᵀ (g(X_s) g(X_s)ᵀ + λI)⁻¹ Y_s − t(X_r) ‖²`` (mean over the batch); ``X_s, Y_s`` take an
  Adam step on ``L``;
* **inner / model pool (§3.2)**: the drawn model then takes one step of ``MSE(h(g(X_s)), Y_s)`` on the current
  synthetic set, and is re-initialised after ``max_age`` steps, so the pool covers models at every stage of
  training on the distilled data.

Pre-training a fresh network by regressing ``Y_s`` from ``X_s`` then transfers like pre-training on the real data.
The closed-form head agrees with scikit-learn's ``KernelRidge(kernel="linear")`` (tested); the bilevel loop and
model pool are the paper's, on a small MLP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_data.core.arrays import check_matrix, load_array, save_arrays

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "DistillUnlabeledInput",
    "DistillUnlabeledOutput",
    "KrrStResult",
    "distill_unlabeled",
    "krr_st",
    "outer_loss",
    "pretrain_regressor",
]

_PAPER = "Self-Supervised Dataset Distillation for Transfer Learning (Lee et al., ICLR 2024)"


def _extractor(dim: int, hidden: int, seed: int) -> nn.Sequential:
    import torch
    from torch import nn

    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())


def outer_loss(
    extractor: nn.Module,
    x_syn: torch.Tensor,
    y_syn: torch.Tensor,
    x_real: torch.Tensor,
    y_real: torch.Tensor,
    lam: float,
) -> torch.Tensor:
    """KRR-ST's outer loss: the closed-form ridge head fitted on ``(g(X_s), Y_s)`` predicting ``t(X_r)``."""
    from malot_data.core.krr import krr_predict

    pred = krr_predict(extractor(x_syn), y_syn, extractor(x_real), lam)
    return ((pred - y_real) ** 2).sum(dim=1).mean()


@dataclass
class KrrStResult:
    """The distilled inputs and targets, and the outer loss per step."""

    x: torch.Tensor
    y: torch.Tensor
    losses: list[float] = field(default_factory=list)


def krr_st(
    x_real: torch.Tensor,
    y_real: torch.Tensor,
    size: int,
    *,
    steps: int = 200,
    batch_size: int = 128,
    lr: float = 1e-2,
    lam: float = 1e-3,
    pool: int = 4,
    max_age: int = 40,
    inner_lr: float = 1e-2,
    hidden: int = 64,
    seed: int = 0,
) -> KrrStResult:
    """Distil ``(x_real, teacher targets y_real)`` into ``size`` synthetic pairs (see the module docstring)."""
    import torch
    from torch import nn

    n, dim = x_real.shape
    if not 0 < size <= n:
        raise ToolError(f"size={size} must be between 1 and the {n} real samples", hint="distil to fewer samples")
    if y_real.shape[0] != n:
        raise ToolError(f"teacher targets have {y_real.shape[0]} rows for {n} inputs", hint="one target row each")
    generator = torch.Generator().manual_seed(seed)
    init = torch.randperm(n, generator=generator)[:size]
    x_syn = x_real[init].clone().requires_grad_(True)
    y_syn = y_real[init].clone().requires_grad_(True)
    optimizer = torch.optim.Adam([x_syn, y_syn], lr=lr)
    models: list[nn.Sequential] = []
    heads: list[nn.Linear] = []
    inner: list[torch.optim.Optimizer] = []
    ages: list[int] = []

    def fresh(i: int, s: int) -> None:
        g = _extractor(dim, hidden, s)
        h = nn.Linear(hidden, y_real.shape[1])
        if i < len(models):
            models[i], heads[i], ages[i] = g, h, 0
            inner[i] = torch.optim.SGD([*g.parameters(), *h.parameters()], lr=inner_lr)
        else:
            models.append(g)
            heads.append(h)
            inner.append(torch.optim.SGD([*g.parameters(), *h.parameters()], lr=inner_lr))
            ages.append(0)

    for i in range(pool):
        fresh(i, seed * 1000 + i)
        for _ in range(int(i * max_age / pool)):  # stagger the ages so the pool spans a training run
            _inner_step(models[i], heads[i], inner[i], x_syn.detach(), y_syn.detach())
        ages[i] = int(i * max_age / pool)
    losses: list[float] = []
    reinit = pool
    for _ in range(steps):
        k = int(torch.randint(pool, (1,), generator=generator))
        batch = torch.randperm(n, generator=generator)[: min(batch_size, n)]
        for p in models[k].parameters():
            p.requires_grad_(False)
        loss = outer_loss(models[k], x_syn, y_syn, x_real[batch], y_real[batch], lam)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        losses.append(float(loss.detach()))
        for p in models[k].parameters():
            p.requires_grad_(True)
        _inner_step(models[k], heads[k], inner[k], x_syn.detach(), y_syn.detach())
        ages[k] += 1
        if ages[k] >= max_age:
            fresh(k, seed * 1000 + reinit)
            reinit += 1
    return KrrStResult(x=x_syn.detach(), y=y_syn.detach(), losses=losses)


def _inner_step(g: nn.Module, h: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    loss = ((h(g(x)) - y) ** 2).sum(dim=1).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def pretrain_regressor(
    x: torch.Tensor, y: torch.Tensor, *, steps: int = 300, lr: float = 1e-2, hidden: int = 64, seed: int = 0
) -> nn.Sequential:
    """Pre-train a fresh extractor (+ linear head) by regressing ``y`` from ``x``; returns the extractor."""
    import torch
    from torch import nn

    g = _extractor(x.shape[1], hidden, seed)
    h = nn.Linear(hidden, y.shape[1])
    opt = torch.optim.Adam([*g.parameters(), *h.parameters()], lr=lr)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        batch = torch.randperm(x.shape[0], generator=generator)[:256]
        loss = ((h(g(x[batch])) - y[batch]) ** 2).sum(dim=1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return g


class DistillUnlabeledInput(BaseModel):
    """Arguments of ``distill_unlabeled`` (array files: .npy, .npz, FILE.npz:KEY or .csv)."""

    data: str = Field(description="the unlabelled real inputs (n × d; images flattened)")
    teacher: str = Field(description="the self-supervised teacher's representation of each input (n × m)")
    size: int = Field(gt=0, description="number of synthetic samples to distil to")
    out: str = Field(description=".npz to write the distilled set to (keys 'x' and 'y')")
    steps: int = Field(default=200, gt=0)
    batch_size: int = Field(default=128, gt=0)
    lr: float = Field(default=1e-2, gt=0, description="Adam step size on the synthetic inputs and targets")
    lam: float = Field(default=1e-3, gt=0, description="ridge of the closed-form head")
    pool: int = Field(default=4, gt=0, description="models in the model pool")
    max_age: int = Field(default=40, gt=0, description="inner steps before a pool model is re-initialised")
    hidden: int = Field(default=64, gt=0, description="width of the pool's MLP feature extractors")
    seed: int = 0


class DistillUnlabeledOutput(BaseModel):
    """Result of ``distill_unlabeled``."""

    out: str
    size: int
    first_outer_loss: float
    last_outer_loss: float


@tool(
    name="distill_unlabeled",
    family="data",
    paper=_PAPER,
    tags=("dataset-distillation", "self-supervised", "unlabelled", "pre-training", "transfer", "needs:teacher"),
    heavy=True,
)
def distill_unlabeled(args: DistillUnlabeledInput) -> DistillUnlabeledOutput:
    """KRR-ST: distil unlabelled data and a teacher's representations into a few synthetic pairs for pre-training.

    Learns synthetic inputs and target representations with a closed-form kernel-ridge head over a pool of
    feature extractors; pre-train on the result by regressing the targets.
    """
    import numpy as np
    import torch

    x = check_matrix(load_array(args.data, name="data"), name="data", min_rows=2)
    t = check_matrix(load_array(args.teacher, name="teacher"), name="teacher", rows=x.shape[0])
    result = krr_st(
        torch.tensor(x, dtype=torch.float32),
        torch.tensor(t, dtype=torch.float32),
        args.size,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        lam=args.lam,
        pool=args.pool,
        max_age=args.max_age,
        hidden=args.hidden,
        seed=args.seed,
    )
    path = save_arrays(args.out, x=result.x.numpy().astype(np.float32), y=result.y.numpy().astype(np.float32))
    tail = result.losses[-10:]
    head = result.losses[:10]
    return DistillUnlabeledOutput(
        out=str(path), size=args.size, first_outer_loss=sum(head) / len(head), last_outer_loss=sum(tail) / len(tail)
    )
