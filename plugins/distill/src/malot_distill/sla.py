"""SLA (Lee, Hwang & Shin, ICML 2020): self-supervised label augmentation via input transformations.

*Self-supervised Label Augmentation via Input Transformations.* Instead of asking a network to be invariant to
transformations ``t_1..t_M`` (data augmentation) or adding a separate self-supervised head (multi-task), SLA learns
the *joint* label ``(y, j)`` over ``N × M`` classes: every training image is shown under every transformation and

    L_SLA = (1/M) Σ_j CE(ρ(t_j(x)), (y, j))                                 (ρ: the joint N·M-way classifier)

At test time the *aggregated* prediction (SLA+AG) averages the joint logits of the true transformation over all
transformed copies: ``P_agg(y|x) ∝ exp((1/M) Σ_j ρ_{(y,j)}(t_j(x)))``. Self-distillation (SLA+SD) adds an N-way head
``σ`` on the same features, trained on untransformed inputs to match the aggregated teacher and the labels:

    L_SLA+SD = L_SLA + T²·KL(P_agg^T ‖ σ(x)^T) + β · CE(σ(x), y)

so that one forward pass of ``σ`` gives most of the aggregation's accuracy. Exact properties (tests): with ``M = 1``
(only the identity) the joint loss is plain cross-entropy and the aggregated prediction is the plain prediction; the
self-distillation term is zero when ``σ`` equals the aggregated teacher. Paper: joint labels, aggregation and
self-distillation. Library: PyTorch (``torch.rot90``/``flip`` for the transformations).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_distill.core.kd import soft_kl

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "SlaInput",
    "SlaOutput",
    "SlaResult",
    "aggregated_logits",
    "build_sla_net",
    "joint_loss",
    "sla_train",
    "train_sla",
    "transformations",
]

_PAPER = "Lee, Hwang & Shin, ICML 2020: Self-supervised Label Augmentation via Input Transformations"

TransformSet = Literal["identity", "rotation", "flip", "rotation_flip"]
Transform = Callable[["torch.Tensor"], "torch.Tensor"]


def transformations(kind: TransformSet) -> list[Transform]:
    """The transformation set ``t_1..t_M`` (``t_1`` is always the identity) for image batches ``(B, C, H, W)``."""
    import torch

    def rot(k: int) -> Transform:
        return lambda x: torch.rot90(x, k, dims=(-2, -1))

    def flip(x: torch.Tensor) -> torch.Tensor:
        return torch.flip(x, dims=(-1,))

    if kind == "identity":
        return [rot(0)]
    if kind == "rotation":
        return [rot(k) for k in range(4)]
    if kind == "flip":
        return [rot(0), flip]
    return [rot(k) for k in range(4)] + [lambda x, k=k: flip(torch.rot90(x, k, dims=(-2, -1))) for k in range(4)]


def build_sla_net(channels: int, classes: int, transforms: int, width: int = 16, seed: int = 0) -> nn.Module:
    """A small CNN with a joint ``classes × transforms`` head and an N-way self-distillation head.

    ``forward(x)`` returns the joint logits ``(B, N·M)`` laid out as ``[y * M + j]``; ``sd(x)`` the N-way logits.
    """
    import torch
    from torch import nn

    class SlaNet(nn.Module):
        """CNN body, joint head and self-distillation head."""

        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(channels, width, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(width, 2 * width, 3, padding=1),
                nn.ReLU(),
                nn.AdaptiveAvgPool2d(2),
                nn.Flatten(),
                nn.Linear(8 * width, 4 * width),
                nn.ReLU(),
            )
            self.joint = nn.Linear(4 * width, classes * transforms)
            self.self_distill = nn.Linear(4 * width, classes)
            self.config = {"channels": channels, "classes": classes, "transforms": transforms, "width": width}

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            """Joint logits."""
            out: torch.Tensor = self.joint(self.body(x))
            return out

        def sd(self, x: torch.Tensor) -> torch.Tensor:
            """Self-distillation head logits."""
            out: torch.Tensor = self.self_distill(self.body(x))
            return out

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return SlaNet()


def joint_loss(net: nn.Module, x: torch.Tensor, y: torch.Tensor, transforms: list[Transform]) -> torch.Tensor:
    """``L_SLA``: mean over transformations of the cross-entropy of the joint label ``y·M + j``."""
    import torch.nn.functional as F

    m = len(transforms)
    losses = [F.cross_entropy(net(t(x)), y * m + j) for j, t in enumerate(transforms)]
    total: torch.Tensor = sum(losses[1:], losses[0]) / m
    return total


def aggregated_logits(net: nn.Module, x: torch.Tensor, transforms: list[Transform]) -> torch.Tensor:
    """SLA+AG: ``(1/M) Σ_j ρ_{(y, j)}(t_j(x))`` for every class ``y`` (N-way logits)."""
    m = len(transforms)
    parts = [net(t(x)).view(x.shape[0], -1, m)[:, :, j] for j, t in enumerate(transforms)]
    total: torch.Tensor = sum(parts[1:], parts[0]) / m
    return total


@dataclass
class SlaResult:
    """Per-step losses."""

    losses: list[float] = field(default_factory=list)


def train_sla(
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    transforms: list[Transform],
    *,
    steps: int,
    lr: float = 1e-3,
    self_distill: bool = True,
    temperature: float = 1.0,
    beta: float = 1.0,
    batch_size: int = 64,
    seed: int = 0,
) -> SlaResult:
    """Train ``net`` in place with ``L_SLA`` (+ the self-distillation terms when ``self_distill``)."""
    import torch.nn.functional as F

    from malot_distill.core.train import batches, fit

    order = batches(x.shape[0], batch_size, steps, seed)

    def loss_fn(step: int) -> torch.Tensor:
        xb, yb = x[order[step]], y[order[step]]
        loss = joint_loss(net, xb, yb, transforms)
        if self_distill:
            teacher = aggregated_logits(net, xb, transforms).detach()
            sd = net.sd(xb)  # type: ignore[operator]
            loss = loss + soft_kl(sd, teacher, temperature).mean() + beta * F.cross_entropy(sd, yb)
        return loss

    net.train()
    result = SlaResult(losses=fit(net.parameters(), loss_fn, steps=steps, lr=lr))
    net.eval()
    return result


def _images(t: torch.Tensor, name: str) -> torch.Tensor:
    if t.dim() == 3:
        t = t.unsqueeze(1)
    if t.dim() != 4:
        raise ToolError(f"{name} must be images (N, H, W) or (N, C, H, W), got shape {tuple(t.shape)}")
    if t.shape[-1] != t.shape[-2]:
        raise ToolError(f"{name} images must be square for rotations, got {t.shape[-2]}×{t.shape[-1]}")
    return t


class SlaInput(BaseModel):
    """Arguments of ``sla_train``."""

    data: str = Field(description=".safetensors with x (N,H,W or N,C,H,W images), y; optional x_test, y_test")
    out: str = Field(description="where to write the trained network (.safetensors)")
    transforms: TransformSet = Field(default="rotation", description="the transformation set (identity: M = 1)")
    self_distill: bool = True
    steps: int = Field(default=300, ge=1)
    lr: float = Field(default=1e-3, gt=0)
    width: int = Field(default=16, ge=1)
    temperature: float = Field(default=1.0, gt=0)
    beta: float = Field(default=1.0, ge=0)
    batch_size: int = Field(default=64, ge=1)
    seed: int = 0


class SlaOutput(BaseModel):
    """Result of ``sla_train``: accuracies on x_test/y_test (or the training data) of the three inference modes."""

    out: str
    transforms: int
    loss_first: float
    loss_last: float
    single_accuracy: float = Field(description="SLA+SI: joint head on the untransformed input")
    aggregated_accuracy: float = Field(description="SLA+AG: aggregated over all transformations")
    self_distilled_accuracy: float | None = Field(description="SLA+SD: the N-way head, one forward pass")


@tool(
    name="sla_train",
    family="distill",
    paper=_PAPER,
    tags=("self-supervision", "distillation", "augmentation", "images", "needs:data"),
)
def sla_train(args: SlaInput) -> SlaOutput:
    """Train a small image classifier with self-supervised label augmentation (joint class × transformation
    labels), aggregated inference, and optional self-distillation into a single-pass N-way head."""
    import torch

    from malot_distill.core.data import check_labels, load_tensors, require
    from malot_distill.core.train import accuracy

    tensors = load_tensors(args.data)
    x = _images(require(tensors, "x"), "x")
    y = check_labels(x, require(tensors, "y"))
    x_eval, y_eval = x, y
    if "x_test" in tensors:
        x_eval = _images(require(tensors, "x_test"), "x_test")
        y_eval = check_labels(x_eval, require(tensors, "y_test"))
        if x_eval.shape[1:] != x.shape[1:]:
            raise ToolError(f"x_test images {tuple(x_eval.shape[1:])} differ from x {tuple(x.shape[1:])}")
    classes = int(max(int(y.max()), int(y_eval.max()))) + 1
    ts = transformations(args.transforms)
    net = build_sla_net(x.shape[1], classes, len(ts), width=args.width, seed=args.seed)
    torch.manual_seed(args.seed)
    result = train_sla(
        net, x, y, ts, steps=args.steps, lr=args.lr, self_distill=args.self_distill, temperature=args.temperature,
        beta=args.beta, batch_size=args.batch_size, seed=args.seed,
    )  # fmt: skip
    from safetensors.torch import save_file

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": "malot-distill-sla", "config": json.dumps(getattr(net, "config", {})), "set": args.transforms}
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, args.out, metadata=meta)
    m = len(ts)
    with torch.no_grad():
        single = net(x_eval).view(x_eval.shape[0], -1, m)[:, :, 0]
        single_acc = float((single.argmax(-1) == y_eval).float().mean())
    return SlaOutput(
        out=args.out,
        transforms=m,
        loss_first=result.losses[0],
        loss_last=result.losses[-1],
        single_accuracy=single_acc,
        aggregated_accuracy=accuracy(lambda inp: aggregated_logits(net, inp, ts), x_eval, y_eval),
        self_distilled_accuracy=accuracy(net.sd, x_eval, y_eval) if args.self_distill else None,  # type: ignore[arg-type]
    )
