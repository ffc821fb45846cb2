"""Cr-KD (Gu, Zhang, Xu & He, ICCV 2023): class-relation knowledge distillation for novel class discovery.

*Class-relation Knowledge Distillation for Novel Class Discovery.* Novel classes are learned from unlabelled data
with the help of labelled known classes. A model trained on the known classes (the frozen teacher) describes each
novel sample by its *class relation* ``r_t(x) = softmax(teacher(x)/T)`` over the known classes. The student (shared
body, known head + novel head) is trained with the base NCD objective (here UNO's: cross-entropy on labelled known
samples over all heads; swapped-prediction cross-entropy between two noisy views of each unlabelled sample with
Sinkhorn–Knopp balanced pseudo-labels on the novel head) plus the class-relation KD term

    L = L_base + λ · mean_x w(x) · T²·KL(r_t(x) ‖ softmax(student_known(x)/T))     (x unlabelled)

with a learnable per-sample weight ``w(x) ∈ (0, 1)`` so that novel samples unrelated to the known classes are not
forced to copy the teacher. †How ``w`` is learned is our reading: ``w(x) = σ(φ · [1, max r_t(x), H(r_t(x))])`` and
``φ`` follows a one-step look-ahead (learning-to-reweight): it moves so that, after a virtual student step on the
weighted loss, the unlabelled clustering loss is lower. Check the paper before relying on this detail.

Exact properties (tests): with ``w ≡ 0`` the objective is the base loss, and with no unlabelled data it is plain
cross-entropy; the KD term is zero when the student's known head equals the teacher. Paper: class-relation KD and
the weighting idea; UNO's base objective. Library: PyTorch, SciPy's Hungarian solver for the clustering accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_distill.core.kd import soft_kl

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "ClassRelationKdInput",
    "ClassRelationKdOutput",
    "CrKdResult",
    "base_ncd_loss",
    "class_relation_kd",
    "relation_kd",
    "train_cr_kd",
]

_PAPER = "Gu, Zhang, Xu & He, ICCV 2023: Class-relation Knowledge Distillation for Novel Class Discovery"

Weighting = Literal["learned", "constant", "zero"]


def relation_kd(student_known: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per-sample class-relation KD ``T²·KL(softmax(t/T) ‖ softmax(s_known/T))``."""
    return soft_kl(student_known, teacher_logits, temperature)


def base_ncd_loss(
    logits_l: torch.Tensor,
    y_l: torch.Tensor,
    logits_u1: torch.Tensor | None,
    logits_u2: torch.Tensor | None,
    known: int,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """UNO's objective: CE on labelled samples over all logits, swapped-prediction CE on unlabelled views.

    Returns ``(total, unlabelled part or None)``. Pseudo-labels come from Sinkhorn–Knopp on the other view's novel
    logits and live only on the novel classes.
    """
    import torch.nn.functional as F

    from malot_distill.core.clustering import sinkhorn

    loss = F.cross_entropy(logits_l, y_l)
    if logits_u1 is None or logits_u2 is None:
        return loss, None
    q1, q2 = sinkhorn(logits_u1[:, known:]), sinkhorn(logits_u2[:, known:])

    def swapped(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(logits, dim=-1)[:, known:]
        return -(target * log_p).sum(-1).mean()

    unlabelled = 0.5 * (swapped(logits_u1, q2) + swapped(logits_u2, q1))
    return loss + unlabelled, unlabelled


def _relation_stats(teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    import torch

    r = torch.softmax(teacher_logits / temperature, dim=-1)
    entropy = -(r * r.clamp_min(1e-12).log()).sum(-1)
    return torch.stack([torch.ones_like(entropy), r.max(-1).values, entropy], dim=-1)


@dataclass
class CrKdResult:
    """Per-step total losses and mean weight ``w`` on the unlabelled batch."""

    losses: list[float] = field(default_factory=list)
    mean_weights: list[float] = field(default_factory=list)


def train_cr_kd(
    student: nn.Module,
    teacher: nn.Module,
    x_l: torch.Tensor,
    y_l: torch.Tensor,
    x_u: torch.Tensor | None,
    *,
    known: int,
    steps: int,
    lr: float = 1e-3,
    temperature: float = 1.0,
    kd_weight: float = 1.0,
    weighting: Weighting = "learned",
    weight_lr: float = 0.05,
    noise_std: float = 0.5,
    batch_size: int = 64,
    seed: int = 0,
) -> CrKdResult:
    """Train ``student`` (logits: ``known`` known classes, then the novel ones) in place with Cr-KD."""
    import torch
    from torch.func import functional_call

    from malot_distill.core.train import batches

    teacher = teacher.eval()
    params: dict[str, torch.Tensor] = {n: p for n, p in student.named_parameters() if p.requires_grad}
    opt = torch.optim.Adam(list(params.values()), lr=lr)
    phi = torch.zeros(3, requires_grad=True)  # w = σ(0) = 0.5 at the start
    phi_opt = torch.optim.Adam([phi], lr=weight_lr)  # look-ahead gradients are tiny: Adam normalises them
    gen = torch.Generator().manual_seed(seed)
    lab_order = batches(x_l.shape[0], batch_size, steps, seed)
    unl_order = batches(x_u.shape[0], batch_size, steps, seed + 1) if x_u is not None else None
    result = CrKdResult()

    def objective(
        p: dict[str, torch.Tensor], xl: torch.Tensor, yl: torch.Tensor, u1: torch.Tensor | None,
        u2: torch.Tensor | None, w: torch.Tensor | None, t_logits: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:  # fmt: skip
        logits_l = functional_call(student, p, (xl,))
        l1 = functional_call(student, p, (u1,)) if u1 is not None else None
        l2 = functional_call(student, p, (u2,)) if u2 is not None else None
        total, unlabelled = base_ncd_loss(logits_l, yl, l1, l2, known)
        if w is not None and t_logits is not None and l1 is not None:
            total = total + kd_weight * (w * relation_kd(l1[:, :known], t_logits, temperature)).mean()
        return total, unlabelled

    student.train()
    for step in range(steps):
        xl, yl = x_l[lab_order[step]], y_l[lab_order[step]]
        u1 = u2 = t_logits = w = None
        if x_u is not None and unl_order is not None:
            xu = x_u[unl_order[step]]
            u1 = xu + noise_std * torch.randn(xu.shape, generator=gen)
            u2 = xu + noise_std * torch.randn(xu.shape, generator=gen)
            with torch.no_grad():
                t_logits = teacher(u1)
            stats = _relation_stats(t_logits, temperature)
            if weighting == "learned":
                # look-ahead: a virtual SGD step with the current weights, then move φ to lower the clustering loss
                w_meta = torch.sigmoid(stats @ phi)
                inner, _ = objective(params, xl, yl, u1, u2, w_meta, t_logits)
                grads = torch.autograd.grad(inner, list(params.values()), create_graph=True, allow_unused=True)
                fast = {n: p if g is None else p - lr * g for (n, p), g in zip(params.items(), grads, strict=True)}
                _, meta = objective(fast, xl, yl, u1, u2, None, None)
                assert meta is not None
                phi_opt.zero_grad(set_to_none=True)
                meta.backward(inputs=[phi])  # type: ignore[no-untyped-call]
                phi_opt.step()
                w = torch.sigmoid(stats @ phi).detach()
            elif weighting == "constant":
                w = torch.ones(stats.shape[0])
        loss, _ = objective(params, xl, yl, u1, u2, w, t_logits)
        if not bool(torch.isfinite(loss)):
            raise ToolError(f"the loss became {float(loss)} at step {step}", hint="lower the learning rate")
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        result.losses.append(float(loss.detach()))
        result.mean_weights.append(float(w.mean()) if w is not None else 0.0)
    student.eval()
    return result


class ClassRelationKdInput(BaseModel):
    """Arguments of ``class_relation_kd``."""

    teacher: str = Field(description="model trained on the known classes (distill MLP file)")
    data: str = Field(
        description=".safetensors: x, y (labelled known classes), x_unlabeled (novel), optional y_unlabeled to score"
    )
    out: str = Field(description="where to write the student (known + novel logits, .safetensors)")
    novel_classes: int = Field(ge=1, description="number of novel classes to discover")
    hidden: list[int] = Field(default=[64], min_length=1)
    steps: int = Field(default=300, ge=1)
    lr: float = Field(default=1e-3, gt=0)
    temperature: float = Field(default=1.0, gt=0)
    kd_weight: float = Field(default=1.0, ge=0)
    weighting: Weighting = "learned"
    noise_std: float = Field(default=0.5, ge=0, description="Gaussian noise making the two views")
    batch_size: int = Field(default=64, ge=2)
    seed: int = 0


class ClassRelationKdOutput(BaseModel):
    """Result of ``class_relation_kd``."""

    out: str
    loss_first: float
    loss_last: float
    mean_weight: float = Field(description="mean w(x) over the last 10 steps")
    novel_accuracy: float | None = Field(description="Hungarian-matched clustering accuracy on x_unlabeled")
    known_accuracy: float


@tool(
    name="class_relation_kd",
    family="distill",
    paper=_PAPER,
    tags=("distillation", "novel-class-discovery", "clustering", "unlabelled", "needs:teacher", "needs:data"),
)
def class_relation_kd(args: ClassRelationKdInput) -> ClassRelationKdOutput:
    """Discover novel classes in unlabelled data with class-relation KD from a known-class teacher (Cr-KD).

    Trains a student with known and novel heads on labelled known-class data and unlabelled novel data; novel
    samples also copy the teacher's relation to the known classes, weighted per sample by a learned ``w(x)``.
    """
    import torch

    from malot_distill.core.clustering import cluster_accuracy
    from malot_distill.core.data import check_labels, load_tensors, require
    from malot_distill.core.mlp import build_mlp, load_mlp, save_mlp
    from malot_distill.core.train import accuracy

    teacher = load_mlp(args.teacher)
    sizes = getattr(teacher, "sizes", [])
    known = sizes[-1]
    tensors = load_tensors(args.data)
    x = require(tensors, "x", dim=2)
    y = check_labels(x, require(tensors, "y"), known)
    x_u = require(tensors, "x_unlabeled", dim=2)
    if x.shape[1] != sizes[0] or x_u.shape[1] != sizes[0]:
        raise ToolError(f"the teacher takes {sizes[0]} features; x has {x.shape[1]}, x_unlabeled {x_u.shape[1]}")
    student = build_mlp([sizes[0], *args.hidden, known + args.novel_classes], seed=args.seed)
    result = train_cr_kd(
        student, teacher, x, y, x_u, known=known, steps=args.steps, lr=args.lr, temperature=args.temperature,
        kd_weight=args.kd_weight, weighting=args.weighting, noise_std=args.noise_std, batch_size=args.batch_size,
        seed=args.seed,
    )  # fmt: skip
    save_mlp(student, args.out)
    novel = None
    if "y_unlabeled" in tensors:
        y_u = check_labels(x_u, require(tensors, "y_unlabeled"), args.novel_classes)
        with torch.no_grad():
            novel = cluster_accuracy(student(x_u)[:, known:].argmax(-1), y_u)
    return ClassRelationKdOutput(
        out=args.out,
        loss_first=result.losses[0],
        loss_last=result.losses[-1],
        mean_weight=sum(result.mean_weights[-10:]) / len(result.mean_weights[-10:]),
        novel_accuracy=novel,
        known_accuracy=accuracy(lambda inp: student(inp)[:, :known], x, y),
    )
