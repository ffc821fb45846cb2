"""Diversity-driven synthesis with directed weight adjustment (DWA; Du et al., "Diversity-Driven Synthesis:
Enhancing Dataset Distillation through Directed Weight Adjustment", NeurIPS 2024).

**SRe2L synthesis (Yin et al. 2023)**, the base: synthetic samples for class ``y`` are optimised so a trained
teacher with BatchNorm classifies them as ``y`` and their batch statistics match the teacher's running statistics:

    L_syn(x) = CE(f_θ(x), y) + α Σ_l ‖μ_l(x) − μ_l^BN‖₂ + ‖σ²_l(x) − σ²_l^BN‖₂.

**DWA (§4, Eq. 8–10)**: batches synthesised one after another with the same teacher come out alike. Before each
batch, the teacher's weights take one *directed* step of norm ``ρ`` that increases its cross-entropy on the real
batch the synthetic batch is initialised from,

    Δθ = ρ · ∇_θ CE(f_θ(X_real), y) / ‖∇_θ CE(f_θ(X_real), y)‖,

and that batch is synthesised with ``f_{θ+Δθ}`` (BatchNorm running statistics stay the teacher's). Each batch thus
sees a differently adjusted teacher, which spreads the synthetic set out (more diverse) while the adjustment stays
small enough to keep the teacher accurate. ``ρ = 0`` is SRe2L.

The synthesis loss and the weight adjustment are the paper's; the teacher is a small BatchNorm MLP on flat inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_data.core.arrays import check_labels, check_matrix, load_array, save_arrays

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "DwaResult",
    "DwaSynthesizeInput",
    "DwaSynthesizeOutput",
    "directed_adjustment",
    "dwa_synthesize",
    "synthesis_loss",
    "synthesize",
]

_PAPER = (
    "Diversity-Driven Synthesis: Enhancing Dataset Distillation through Directed Weight Adjustment "
    "(Du et al., NeurIPS 2024)"
)


def directed_adjustment(
    teacher: nn.Module, x_real: torch.Tensor, y_real: torch.Tensor, rho: float
) -> list[torch.Tensor]:
    """DWA's ``Δθ``: ``ρ`` times the normalised gradient of the teacher's CE on the real batch (one per parameter).

    Computed in evaluation mode (BatchNorm uses its running statistics); the global norm of ``Δθ`` is ``ρ``.
    """
    import torch

    if rho < 0:
        raise ToolError(f"rho={rho} must be >= 0", hint="rho is the norm of the weight adjustment")
    params = [p for p in teacher.parameters() if p.requires_grad]
    teacher.eval()
    loss = torch.nn.functional.cross_entropy(teacher(x_real), y_real)
    grads = torch.autograd.grad(loss, params)
    norm = torch.sqrt(sum((g**2).sum() for g in grads))  # type: ignore[arg-type]
    if rho == 0 or float(norm) == 0.0:
        return [torch.zeros_like(p) for p in params]
    return [rho * g / norm for g in grads]


class _BnStats:
    """Forward hooks on every BatchNorm1d layer that record the batch mean/variance of its input."""

    def __init__(self, model: nn.Module) -> None:
        import torch

        self.losses: list[torch.Tensor] = []
        self.handles = [
            m.register_forward_hook(self._hook) for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)
        ]
        if not self.handles:
            raise ToolError("the teacher has no BatchNorm layer", hint="SRe2L/DWA synthesis needs a BatchNorm teacher")

    def _hook(self, module: nn.Module, inputs: tuple[torch.Tensor, ...], _: torch.Tensor) -> None:
        import torch

        x = inputs[0]
        mean, var = x.mean(dim=0), x.var(dim=0, unbiased=False)
        bn = module
        assert isinstance(bn, torch.nn.BatchNorm1d) and bn.running_mean is not None and bn.running_var is not None
        self.losses.append(torch.norm(mean - bn.running_mean, 2) + torch.norm(var - bn.running_var, 2))

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def synthesis_loss(teacher: nn.Module, x: torch.Tensor, y: torch.Tensor, alpha_bn: float) -> torch.Tensor:
    """SRe2L's loss: CE of the (eval-mode) teacher plus ``alpha_bn`` times the BatchNorm statistic mismatch."""
    import torch

    stats = _BnStats(teacher)
    try:
        teacher.eval()
        ce = torch.nn.functional.cross_entropy(teacher(x), y)
        return ce + alpha_bn * torch.stack(stats.losses).sum()
    finally:
        stats.close()


@dataclass
class DwaResult:
    """Synthetic samples, their classes, and the norm of every batch's weight adjustment."""

    x: torch.Tensor
    y: torch.Tensor
    adjustment_norms: list[float]


def synthesize(
    teacher: nn.Module,
    x_real: torch.Tensor,
    y_real: torch.Tensor,
    ipc: int,
    *,
    rho: float,
    steps: int = 100,
    lr: float = 0.05,
    alpha_bn: float = 0.1,
    init: Literal["noise", "real"] = "noise",
    seed: int = 0,
) -> DwaResult:
    """``ipc`` rounds of one synthetic sample per class. Each round draws a fresh real batch (one sample per class),
    adjusts the teacher by DWA's directed step of norm ``rho`` on it, and synthesises the round's samples from
    Gaussian noise (``init="noise"``, SRe2L's start, scaled to the data) or from that real batch (``"real"``)."""
    import torch

    classes = int(y_real.max()) + 1
    by_class = [torch.nonzero(y_real == c).squeeze(1) for c in range(classes)]
    if any(m.numel() < ipc for m in by_class):
        raise ToolError(f"every class needs at least ipc={ipc} real samples", hint="lower ipc")
    generator = torch.Generator().manual_seed(seed)
    orders = [m[torch.randperm(m.numel(), generator=generator)] for m in by_class]
    centre, scale = x_real.mean(dim=0), x_real.std(dim=0)
    params = [p for p in teacher.parameters() if p.requires_grad]
    originals = [p.detach().clone() for p in params]
    xs: list[torch.Tensor] = []
    ys: list[torch.Tensor] = []
    norms: list[float] = []
    labels = torch.arange(classes)
    for r in range(ipc):
        idx = torch.stack([orders[c][r] for c in range(classes)])
        x_init, y_init = x_real[idx], y_real[idx]
        delta = directed_adjustment(teacher, x_init, y_init, rho)
        norms.append(float(torch.sqrt(sum((d**2).sum() for d in delta))))  # type: ignore[arg-type]
        if init == "real":
            x = x_init.clone().requires_grad_(True)
        else:
            noise = torch.randn(x_init.shape, generator=generator) * scale + centre
            x = noise.requires_grad_(True)
        opt = torch.optim.Adam([x], lr=lr)
        with torch.no_grad():  # θ + Δθ for this batch; the running statistics stay the teacher's
            for p, d in zip(params, delta, strict=True):
                p.add_(d)
        try:
            for _ in range(steps):
                loss = synthesis_loss(teacher, x, labels, alpha_bn)
                opt.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
        finally:
            with torch.no_grad():
                for p, original in zip(params, originals, strict=True):
                    p.copy_(original)
        xs.append(x.detach())
        ys.append(labels.clone())
    for p in params:
        p.grad = None
    return DwaResult(x=torch.cat(xs), y=torch.cat(ys), adjustment_norms=norms)


class DwaSynthesizeInput(BaseModel):
    """Arguments of ``dwa_synthesize`` (array files: .npy, .npz, FILE.npz:KEY or .csv)."""

    data: str = Field(description="real training inputs (n × d; images flattened)")
    labels: str = Field(description="their class labels (n)")
    ipc: int = Field(gt=0, description="synthetic samples per class")
    out: str = Field(description=".npz for 'x', 'labels' and the teacher's 'soft_labels' (for relabelled training)")
    rho: float = Field(default=0.05, ge=0, description="norm of the directed weight adjustment (0 = SRe2L)")
    steps: int = Field(default=100, gt=0, description="optimisation steps per synthetic batch")
    lr: float = Field(default=0.05, gt=0)
    alpha_bn: float = Field(default=0.1, ge=0, description="weight of the BatchNorm statistic matching")
    init: Literal["noise", "real"] = Field(default="noise", description="start from noise (SRe2L) or real samples")
    teacher_steps: int = Field(default=400, gt=0, description="training steps of the BatchNorm MLP teacher")
    hidden: int = Field(default=64, gt=0)
    temperature: float = Field(default=4.0, gt=0, description="temperature of the saved soft labels")
    seed: int = 0


class DwaSynthesizeOutput(BaseModel):
    """Result of ``dwa_synthesize``."""

    out: str
    size: int
    teacher_train_accuracy: float
    adjustment_norms: list[float]
    teacher_accuracy_on_synthetic: float


@tool(
    name="dwa_synthesize",
    family="data",
    paper=_PAPER,
    tags=("dataset-distillation", "synthesis", "diversity", "compression", "needs:labelled-data"),
    heavy=True,
)
def dwa_synthesize(args: DwaSynthesizeInput) -> DwaSynthesizeOutput:
    """DWA: synthesise ``ipc`` samples per class from a BatchNorm teacher, adjusting its weights before each batch.

    Trains a small BatchNorm MLP teacher on the data, then SRe2L-synthesises batches (CE + BN-statistic matching),
    each with the teacher moved by a norm-ρ ascent step on that batch's real initialisation, for a more diverse set.
    """
    import torch

    from malot_data.core.nets import accuracy, make_mlp, train_classifier

    x = check_matrix(load_array(args.data, name="data"), name="data", min_rows=2)
    y = check_labels(load_array(args.labels, name="labels"), name="labels", rows=x.shape[0])
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    teacher = make_mlp(x.shape[1], int(y.max()) + 1, args.hidden, batchnorm=True, seed=args.seed)
    train_classifier(teacher, xt, yt, steps=args.teacher_steps, seed=args.seed)
    result = synthesize(
        teacher,
        xt,
        yt,
        args.ipc,
        rho=args.rho,
        steps=args.steps,
        lr=args.lr,
        alpha_bn=args.alpha_bn,
        init=args.init,
        seed=args.seed,
    )
    with torch.no_grad():
        soft = torch.softmax(teacher(result.x) / args.temperature, dim=1)
    path = save_arrays(args.out, x=result.x.numpy(), labels=result.y.numpy(), soft_labels=soft.numpy())
    return DwaSynthesizeOutput(
        out=str(path),
        size=int(result.x.shape[0]),
        teacher_train_accuracy=accuracy(teacher, xt, yt),
        adjustment_norms=result.adjustment_norms,
        teacher_accuracy_on_synthetic=accuracy(teacher, result.x, result.y),
    )
