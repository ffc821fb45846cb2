"""DATM (Guo et al., "Towards Lossless Dataset Distillation via Difficulty-Aligned Trajectory Matching",
ICLR 2024): trajectory matching whose matched stage follows the images-per-class budget, with learnable soft labels.

**Trajectory matching (MTT, Cazenavette et al. 2022, Eq. 1–2)**: experts are trained on the real data and their
parameters ``θ*_t`` saved after every epoch. One distillation iteration starts a student at ``θ*_t`` for a random
start epoch ``t``, trains it ``N`` steps on the synthetic set with a learnable step size, and matches where it lands
to the expert ``M`` epochs later:

    L = ‖θ̂_{t+N} − θ*_{t+M}‖² / ‖θ*_t − θ*_{t+M}‖²,

back-propagated through the unrolled steps into the synthetic inputs, the step size and the labels.

**DATM's additions (§4)**:

* *difficulty alignment*: the start epoch is drawn from ``[T⁻, T⁺]`` and the window moves later as the budget
  (IPC) grows — few synthetic samples can only hold the easy patterns of early training, many can hold the hard
  patterns of late training; ``T⁺`` also grows during distillation up to ``T⁺_final`` (sequential generation).
  :func:`difficulty_window` is our rule of thumb following the paper's table of windows;
* *soft labels*: the synthetic labels are learnable logits initialised from an expert's logits on the initial real
  samples, which are drawn only among samples that expert classifies correctly.

The whole algorithm is the paper's; torch's ``torch.func.functional_call`` does the unrolled steps. The network is a
small MLP on flat inputs (the paper's ConvNets on CIFAR, at our scale).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_data.core.arrays import check_labels, check_matrix, load_array, save_arrays

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "DatmDistillInput",
    "DatmDistillOutput",
    "DatmResult",
    "datm",
    "datm_distill",
    "difficulty_window",
    "expert_trajectories",
    "matching_loss",
]

_PAPER = "Towards Lossless Dataset Distillation via Difficulty-Aligned Trajectory Matching (Guo et al., ICLR 2024)"


def expert_trajectories(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    experts: int,
    epochs: int,
    lr: float = 0.05,
    batch_size: int = 64,
    seed: int = 0,
) -> list[list[torch.Tensor]]:
    """Train ``experts`` copies of ``model`` (fresh inits) with SGD on ``(x, y)``; each trajectory holds the flat
    parameters at the start and after each of ``epochs`` epochs."""
    import copy

    import torch

    from malot_data.core.functional import flat_params

    trajectories: list[list[torch.Tensor]] = []
    for e in range(experts):
        torch.manual_seed(seed * 7919 + e)
        net = copy.deepcopy(model)
        for module in net.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset) and module is not net:
                reset()
        opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.0)
        generator = torch.Generator().manual_seed(seed * 7919 + e)
        points = [flat_params(net)]
        for _ in range(epochs):
            order = torch.randperm(x.shape[0], generator=generator)
            for start in range(0, x.shape[0], batch_size):
                idx = order[start : start + batch_size]
                loss = torch.nn.functional.cross_entropy(net(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
            points.append(flat_params(net))
        trajectories.append(points)
    return trajectories


def difficulty_window(ipc: int, epochs: int, expert_epochs: int) -> tuple[int, int]:
    """``(T⁻, T⁺)`` for a budget of ``ipc`` samples per class: later stages for larger budgets.

    Follows the shape of DATM's table (IPC 1 matches the first few epochs; IPC ≥ 500 only late ones):
    ``T⁺ = last·min(1, 0.1 + 0.3·log10(1 + ipc))`` and ``T⁻ = T⁺/2`` from IPC 50 on, else 0, where ``last`` is the
    latest start that leaves ``expert_epochs`` epochs to match.
    """
    last = epochs - expert_epochs
    if last < 1:
        raise ToolError(
            f"trajectories of {epochs} epochs cannot match {expert_epochs} epochs ahead",
            hint="train longer experts or lower expert_epochs",
        )
    upper = max(1, min(last, round(last * min(1.0, 0.1 + 0.3 * math.log10(1 + ipc)))))
    lower = upper // 2 if ipc >= 50 else 0
    return lower, upper


def matching_loss(
    model: nn.Module,
    start: torch.Tensor,
    target: torch.Tensor,
    x_syn: torch.Tensor,
    y_syn: torch.Tensor,
    lr: torch.Tensor,
    steps: int,
    batch_size: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """Normalised trajectory-matching loss after ``steps`` unrolled SGD steps from ``start`` on the synthetic set."""
    import torch

    from malot_data.core.functional import functional_forward
    from malot_data.core.nets import soft_cross_entropy

    theta = start.clone().requires_grad_(True)
    current = theta
    n = x_syn.shape[0]
    for _ in range(steps):
        idx = torch.randperm(n, generator=generator)[: min(batch_size, n)]
        loss = soft_cross_entropy(functional_forward(model, current, x_syn[idx]), y_syn[idx])
        (grad,) = torch.autograd.grad(loss, current, create_graph=True)
        current = current - lr * grad
    return ((current - target) ** 2).sum() / ((start - target) ** 2).sum().clamp_min(1e-12)


@dataclass
class DatmResult:
    """Synthetic inputs, soft-label logits (``None`` with hard labels), hard labels, the learned step size, the
    matching loss per iteration and the start-epoch window used."""

    x: torch.Tensor
    label_logits: torch.Tensor | None
    labels: torch.Tensor
    lr: float
    losses: list[float] = field(default_factory=list)
    window: tuple[int, int] = (0, 0)


def datm(
    model: nn.Module,
    x_real: torch.Tensor,
    y_real: torch.Tensor,
    trajectories: list[list[torch.Tensor]],
    ipc: int,
    *,
    iterations: int = 200,
    syn_steps: int = 10,
    expert_epochs: int = 2,
    window: tuple[int, int] | None = None,
    final_upper: int | None = None,
    soft_labels: bool = True,
    lr_x: float = 0.05,
    lr_label: float = 2.0,
    lr_lr: float = 1e-3,
    init_lr: float = 0.05,
    batch_size: int = 256,
    seed: int = 0,
) -> DatmResult:
    """Distil ``(x_real, y_real)`` to ``ipc`` samples per class by difficulty-aligned trajectory matching."""
    import torch

    from malot_data.core.functional import functional_forward

    if not trajectories or any(len(t) != len(trajectories[0]) for t in trajectories):
        raise ToolError("expert trajectories must be non-empty and of equal length", hint="train them together")
    epochs = len(trajectories[0]) - 1
    lower, upper = window if window is not None else difficulty_window(ipc, epochs, expert_epochs)
    if not 0 <= lower <= upper <= epochs - expert_epochs:
        raise ToolError(f"start window [{lower}, {upper}] must lie in [0, {epochs - expert_epochs}]")
    final = max(upper, min(final_upper if final_upper is not None else upper, epochs - expert_epochs))
    classes = int(y_real.max()) + 1
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # DATM: initialise from real samples the expert (at T⁺) gets right, soft labels = its logits
        expert_logits = functional_forward(model, trajectories[0][upper], x_real)
    correct = expert_logits.argmax(dim=1) == y_real
    picks: list[torch.Tensor] = []
    for c in range(classes):
        members = torch.nonzero((y_real == c) & correct).squeeze(1)
        if members.numel() < ipc:
            members = torch.nonzero(y_real == c).squeeze(1)
        if members.numel() < ipc:
            raise ToolError(f"class {c} has {members.numel()} real samples, fewer than ipc={ipc}", hint="lower ipc")
        picks.append(members[torch.randperm(members.numel(), generator=generator)[:ipc]])
    init = torch.cat(picks)
    x_syn = x_real[init].clone().requires_grad_(True)
    hard = y_real[init].clone()
    label_logits = expert_logits[init].clone().requires_grad_(True) if soft_labels else None
    syn_lr = torch.tensor(float(init_lr)).requires_grad_(True)
    groups: list[dict[str, object]] = [{"params": [x_syn], "lr": lr_x}, {"params": [syn_lr], "lr": lr_lr}]
    if label_logits is not None:
        groups.append({"params": [label_logits], "lr": lr_label})
    optimizer = torch.optim.SGD(groups, lr=lr_x, momentum=0.5)
    losses: list[float] = []
    for it in range(iterations):
        current_upper = upper + round((final - upper) * it / max(1, iterations - 1))
        traj = trajectories[int(torch.randint(len(trajectories), (1,), generator=generator))]
        t = int(torch.randint(lower, current_upper + 1, (1,), generator=generator))
        targets = torch.softmax(label_logits, dim=1) if label_logits is not None else hard
        loss = matching_loss(
            model, traj[t], traj[t + expert_epochs], x_syn, targets, syn_lr, syn_steps, batch_size, generator
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        with torch.no_grad():
            syn_lr.clamp_(min=1e-4)
        losses.append(float(loss.detach()))
    return DatmResult(
        x=x_syn.detach(),
        label_logits=label_logits.detach() if label_logits is not None else None,
        labels=hard,
        lr=float(syn_lr.detach()),
        losses=losses,
        window=(lower, upper),
    )


class DatmDistillInput(BaseModel):
    """Arguments of ``datm_distill`` (array files: .npy, .npz, FILE.npz:KEY or .csv)."""

    data: str = Field(description="real training inputs (n × d; images flattened)")
    labels: str = Field(description="their class labels (n)")
    ipc: int = Field(gt=0, description="synthetic samples per class")
    out: str = Field(description=".npz for the distilled set: 'x', 'soft_labels' (probabilities), 'labels'")
    experts: int = Field(default=3, gt=0, description="expert trajectories to train on the real data")
    epochs: int = Field(default=12, gt=1, description="epochs per expert trajectory")
    expert_epochs: int = Field(default=2, gt=0, description="M: expert epochs the student must catch up with")
    syn_steps: int = Field(default=10, gt=0, description="N: unrolled student steps on the synthetic set")
    iterations: int = Field(default=200, gt=0, description="distillation iterations")
    min_start: int | None = Field(default=None, ge=0, description="T⁻ (default: from ipc, see difficulty_window)")
    max_start: int | None = Field(default=None, ge=0, description="T⁺ (default: from ipc)")
    final_max_start: int | None = Field(default=None, ge=0, description="T⁺ reached at the end (default: T⁺)")
    soft_labels: bool = Field(default=True, description="learn soft labels initialised from expert logits")
    hidden: int = Field(default=64, gt=0, description="width of the MLP the experts and students use")
    seed: int = 0


class DatmDistillOutput(BaseModel):
    """Result of ``datm_distill``."""

    out: str
    size: int
    window: tuple[int, int]
    learned_lr: float
    first_matching_loss: float
    last_matching_loss: float


@tool(
    name="datm_distill",
    family="data",
    paper=_PAPER,
    tags=("dataset-distillation", "trajectory-matching", "soft-labels", "compression", "needs:labelled-data"),
    heavy=True,
)
def datm_distill(args: DatmDistillInput) -> DatmDistillOutput:
    """DATM: distil a labelled dataset to ``ipc`` samples per class by difficulty-aligned trajectory matching.

    Trains small expert trajectories on the data, then matches student trajectories on learnable synthetic samples
    and soft labels to the expert's, starting from epochs chosen by the budget.
    """
    import torch

    from malot_data.core.nets import make_mlp

    x = check_matrix(load_array(args.data, name="data"), name="data", min_rows=2)
    y = check_labels(load_array(args.labels, name="labels"), name="labels", rows=x.shape[0])
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    classes = int(y.max()) + 1
    model = make_mlp(x.shape[1], classes, args.hidden, seed=args.seed)
    trajectories = expert_trajectories(model, xt, yt, experts=args.experts, epochs=args.epochs, seed=args.seed)
    window = None
    if args.min_start is not None or args.max_start is not None:
        auto = difficulty_window(args.ipc, args.epochs, args.expert_epochs)
        window = (
            args.min_start if args.min_start is not None else auto[0],
            args.max_start if args.max_start is not None else auto[1],
        )
    result = datm(
        model,
        xt,
        yt,
        trajectories,
        args.ipc,
        iterations=args.iterations,
        syn_steps=args.syn_steps,
        expert_epochs=args.expert_epochs,
        window=window,
        final_upper=args.final_max_start,
        soft_labels=args.soft_labels,
        seed=args.seed,
    )
    soft = (
        torch.softmax(result.label_logits, dim=1)
        if result.label_logits is not None
        else torch.nn.functional.one_hot(result.labels, classes).float()
    )
    path = save_arrays(args.out, x=result.x.numpy(), soft_labels=soft.numpy(), labels=result.labels.numpy())
    k = min(10, len(result.losses))
    return DatmDistillOutput(
        out=str(path),
        size=int(result.x.shape[0]),
        window=result.window,
        learned_lr=result.lr,
        first_matching_loss=sum(result.losses[:k]) / k,
        last_matching_loss=sum(result.losses[-k:]) / k,
    )
