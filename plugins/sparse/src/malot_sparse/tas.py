"""TAS: network pruning via transformable architecture search (Dong & Yang, NeurIPS 2019), on MLPs.

The paper's method, implemented here for a plain MLP of ``L`` hidden layers of (max) width ``C``:

* every hidden layer ``i`` has a learnable distribution ``p_i = softmax(α_i)`` over candidate widths ``c_1..c_K``
  and the network a distribution ``softmax(β)`` over candidate depths;
* a forward pass draws Gumbel-softmax weights ``p̂ = softmax((log p + o)/τ)``, keeps the ``I`` largest sampled
  choices and aggregates their outputs with the re-normalised weights; outputs of different widths are aligned by
  *channel-wise interpolation* ``CW(O[:, :c_j], C)`` (adaptive average pooling over the channel axis, as the
  official code's "v2" interpolation), and outputs at different depths are aggregated the same way (eq. 4-6);
* the architecture parameters minimise ``CE(val) + λ·L_cost`` where ``L_cost = log E[F]`` when the argmax network's
  FLOPs ``F`` exceed ``(1 + t)·R``, ``−log E[F]`` below ``(1 − t)·R`` and ``0`` inside the band (eq. 7), with the
  expected FLOPs ``E[F]`` computed exactly from the distributions (widths and depth are independent); network
  weights minimise ``CE(train)``, alternating with the architecture step; ``τ`` decays linearly from 10 to 0.1;
* the argmax widths and depth give the pruned network, trained with knowledge distillation (Hinton et al.) from
  the unpruned network.

The search loop, FLOP expectation and cost loss are this module's; Gumbel noise and autograd are PyTorch's.
torch-pruning (L1 channel pruning to the same FLOPs) is the baseline in the claim benchmark.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool

if TYPE_CHECKING:
    import torch
    from torch import nn

    from malot_sparse.core.supernet import TasSupernet

__all__ = [
    "TasResult",
    "TasSearchInput",
    "TasSearchOutput",
    "build_supernet",
    "search",
    "tas_cost_loss",
    "tas_search",
]


def tas_cost_loss(expected_flops: torch.Tensor, argmax_flops: float, target: float, tolerance: float) -> torch.Tensor:
    """Eq. 7: ``log E[F]`` above ``(1+t)·R``, ``−log E[F]`` below ``(1−t)·R``, zero inside the band."""
    if argmax_flops > (1 + tolerance) * target:
        return expected_flops.log()
    if argmax_flops < (1 - tolerance) * target:
        return -expected_flops.log()
    return expected_flops * 0.0


def build_supernet(
    in_dim: int,
    width: int,
    layers: int,
    classes: int,
    fractions: Sequence[float] = (0.25, 0.5, 0.75, 1.0),
    depths: Sequence[int] | None = None,
    teacher: nn.Module | None = None,
) -> TasSupernet:
    """The TAS search space; ``teacher`` (an MLP of the same shape) initialises the weights."""
    from malot_sparse.core.mlp import linear_layers

    if layers < 1 or width < 1:
        raise ToolError(f"the supernet needs at least one hidden layer and unit, got layers={layers}, width={width}")
    if not fractions or any(not 0 < f <= 1 for f in fractions):
        raise ToolError(f"width fractions must lie in (0, 1], got {list(fractions)}")
    chosen = list(depths) if depths is not None else list(range(1, layers + 1))
    if not chosen or any(not 1 <= d <= layers for d in chosen):
        raise ToolError(f"depth choices must lie in 1..{layers}, got {chosen}")
    from malot_sparse.core.supernet import TasSupernet

    net = TasSupernet(in_dim, width, layers, classes, fractions, chosen)
    if teacher is not None:
        source = linear_layers(teacher)
        target = [*net.hidden, net.head]
        if [tuple(s.weight.shape) for s in source] != [tuple(t.weight.shape) for t in target]:
            raise ToolError("the teacher's layers do not match the supernet", hint="use an MLP of equal hidden widths")
        for s, t in zip(source, target, strict=True):
            t.load_state_dict(s.state_dict())
    return net


@dataclass
class TasResult:
    """The searched architecture and the search's trace."""

    widths: list[int]
    depth: int
    flops: int
    expected_flops: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)


def search(
    supernet: TasSupernet,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_val: torch.Tensor,
    y_val: torch.Tensor,
    *,
    target_flops: float,
    steps: int = 300,
    lr: float = 1e-3,
    arch_lr: float = 0.05,
    cost_weight: float = 2.0,
    tolerance: float = 0.05,
    batch_size: int = 128,
    tau: tuple[float, float] = (10.0, 0.1),
    seed: int = 0,
) -> TasResult:
    """Alternate weight steps (CE on training batches) and architecture steps (CE + λ·L_cost on validation batches)."""
    import torch
    import torch.nn.functional as F

    from malot_sparse.core.structured import mlp_flops

    if target_flops <= 0:
        raise ToolError(f"the FLOP target must be positive, got {target_flops}")
    net = supernet
    weight_opt = torch.optim.Adam(net.weight_parameters(), lr=lr)
    arch_opt = torch.optim.Adam(net.arch_parameters(), lr=arch_lr, betas=(0.5, 0.999))
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    trace: list[float] = []
    losses: list[float] = []
    for step in range(steps):
        net.tau = tau[0] - (tau[0] - tau[1]) * step / max(steps - 1, 1)
        pick = torch.randint(x_train.shape[0], (min(batch_size, x_train.shape[0]),), generator=generator)
        weight_opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x_train[pick]), y_train[pick])
        loss.backward()  # type: ignore[no-untyped-call]
        weight_opt.step()
        pick = torch.randint(x_val.shape[0], (min(batch_size, x_val.shape[0]),), generator=generator)
        arch_opt.zero_grad(set_to_none=True)
        widths, _depth = net.argmax_arch()
        current = mlp_flops(net.in_dim, widths, net.classes)
        expected = net.expected_flops()
        arch_loss = F.cross_entropy(net(x_val[pick]), y_val[pick]) + cost_weight * tas_cost_loss(
            expected, current, target_flops, tolerance
        )
        arch_loss.backward()  # type: ignore[no-untyped-call]
        arch_opt.step()
        trace.append(float(expected.detach()))
        losses.append(float(loss.detach()))
    widths, depth = net.argmax_arch()
    return TasResult(
        widths=widths,
        depth=depth,
        flops=mlp_flops(net.in_dim, widths, net.classes),
        expected_flops=trace,
        losses=losses,
    )


_PAPER = "Network Pruning via Transformable Architecture Search (Dong & Yang, NeurIPS 2019)"


class TasSearchInput(BaseModel):
    """Arguments of the ``tas_search`` tool."""

    data: str = Field(description="classification data: .safetensors or .npz with x (n, features) and y (n,)")
    out: str = Field(description="where to write the searched, distilled MLP (.safetensors checkpoint)")
    teacher: str | None = Field(
        default=None, description="unpruned MLP checkpoint with equal hidden widths (trained here when absent)"
    )
    width: int = Field(default=64, gt=0, description="hidden width of the teacher trained here")
    layers: int = Field(default=3, gt=0, le=12, description="hidden layers of the teacher trained here")
    flops_ratio: float = Field(default=0.5, gt=0, le=1, description="R: target FLOPs as a share of the teacher's")
    width_fractions: list[float] = Field(default=[0.25, 0.5, 0.75, 1.0], min_length=1)
    tolerance: float = Field(default=0.05, ge=0, lt=1, description="t: the FLOP band ±t around the target")
    cost_weight: float = Field(default=2.0, ge=0, description="λ of the cost loss")
    search_steps: int = Field(default=300, gt=0)
    kd_steps: int = Field(default=400, ge=0)
    kd_weight: float = Field(default=0.9, ge=0, le=1)
    temperature: float = Field(default=4.0, gt=0)
    teacher_steps: int = Field(default=400, gt=0)
    lr: float = Field(default=2e-3, gt=0)
    test_fraction: float = Field(default=0.2, gt=0, lt=1)
    seed: int = 0


class TasSearchOutput(BaseModel):
    """Result of the ``tas_search`` tool."""

    out: str
    widths: list[int]
    depth: int
    flops: int
    teacher_flops: int
    flops_ratio: float
    meets_target: bool = Field(description="the searched FLOPs lie within (1 ± t)·R of the teacher's")
    teacher_test_accuracy: float
    searched_test_accuracy: float


@tool(
    name="tas_search",
    family="sparse",
    paper=_PAPER,
    tags=(
        "sparse",
        "pruning",
        "architecture-search",
        "distillation",
        "compression",
        "supervised",
        "needs:labelled-data",
    ),
    heavy=True,
)
def tas_search(args: TasSearchInput) -> TasSearchOutput:
    """TAS: search the widths and depth of a pruned MLP under a FLOP target by differentiable search (Gumbel-softmax
    over widths/depths, channel-wise interpolation), then train it with knowledge distillation from the unpruned one.
    """
    import torch

    from malot_sparse.core.mlp import (
        accuracy,
        build_mlp,
        check_matches,
        load_mlp,
        load_xy,
        save_mlp,
        split,
        train_classifier,
    )
    from malot_sparse.core.structured import mlp_flops, mlp_widths

    x, y = load_xy(args.data)
    classes = int(y.max()) + 1
    if classes < 2:
        raise ToolError("the data hold a single class", hint="give at least two classes")
    x_train, y_train, x_test, y_test = split(x, y, args.test_fraction, args.seed)
    x_fit, y_fit, x_val, y_val = split(x_train, y_train, 0.5, args.seed + 1)  # TAS: weights vs architecture halves
    torch.manual_seed(args.seed)
    if args.teacher is not None:
        teacher, _, _ = load_mlp(args.teacher)
        widths = mlp_widths(teacher)
        if len(set(widths)) != 1:
            raise ToolError(f"the teacher's hidden widths differ ({widths})", hint="TAS here needs equal hidden widths")
        check_matches(teacher, x.shape[1], classes)
    else:
        widths = [args.width] * args.layers
        teacher = build_mlp(x.shape[1], widths, classes)
        train_classifier(teacher, x_train, y_train, steps=args.teacher_steps, lr=args.lr, seed=args.seed)
    teacher.eval()
    teacher_flops = mlp_flops(x.shape[1], widths, classes)
    supernet = build_supernet(x.shape[1], widths[0], len(widths), classes, args.width_fractions, teacher=teacher)
    found = search(
        supernet,
        x_fit,
        y_fit,
        x_val,
        y_val,
        target_flops=args.flops_ratio * teacher_flops,
        steps=args.search_steps,
        lr=args.lr,
        cost_weight=args.cost_weight,
        tolerance=args.tolerance,
        seed=args.seed,
    )
    torch.manual_seed(args.seed + 1)
    student = build_mlp(x.shape[1], found.widths, classes)
    train_classifier(
        student,
        x_train,
        y_train,
        steps=args.kd_steps,
        lr=args.lr,
        seed=args.seed,
        teacher=teacher,
        kd_weight=args.kd_weight,
        temperature=args.temperature,
    )
    out = save_mlp(student, Path(args.out), extra={"method": "tas", "flops": found.flops})
    ratio = found.flops / teacher_flops
    return TasSearchOutput(
        out=str(out),
        widths=found.widths,
        depth=found.depth,
        flops=found.flops,
        teacher_flops=teacher_flops,
        flops_ratio=ratio,
        meets_target=(1 - args.tolerance) * args.flops_ratio <= ratio <= (1 + args.tolerance) * args.flops_ratio,
        teacher_test_accuracy=accuracy(teacher, x_test, y_test),
        searched_test_accuracy=accuracy(student, x_test, y_test),
    )
