"""N2N learning: network-to-network compression by policy-gradient reinforcement learning (Ashok et al., ICLR 2018).

The paper's two-stage method, implemented here for MLP teachers:

1. a **layer-removal policy** — a bidirectional LSTM over the teacher's layer descriptions — outputs a keep/remove
   Bernoulli action per layer (layers whose removal would break the shapes are always kept);
2. a **layer-shrinkage policy** — a unidirectional LSTM over the reduced network's layers that also reads its
   previous action — picks a shrink ratio per hidden layer from a discrete set; the shrink keeps the units of largest
   L1 magnitude (torch-pruning's dependency graph removes the next layer's inputs with them).

Every sampled student is trained briefly with knowledge distillation from the teacher (Hinton's softened logits
here; the paper matches logits) and scored with the reward ``R = C(2 − C) · Acc_s / Acc_t`` where
``C = 1 − #params_s / #params_t`` is the compression (eq. 1-2): no compression gives ``R = 0`` however accurate the
student. Both policies are trained with REINFORCE, several rollouts per update and a moving-average baseline
(eq. 3). Students with identical architectures share one evaluation (a cache), which changes no reward.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "N2nCompressInput",
    "N2nCompressOutput",
    "N2nResult",
    "PolicyTrace",
    "layer_features",
    "n2n",
    "n2n_compress",
    "n2n_reward",
    "train_removal_policy",
    "train_shrink_policy",
]


def n2n_reward(student_params: int, teacher_params: int, student_acc: float, teacher_acc: float) -> float:
    """``R = C(2 − C) · Acc_s / Acc_t`` with ``C = 1 − #params_s / #params_t`` (N2N eq. 1-2)."""
    if teacher_params <= 0 or student_params < 0:
        raise ToolError(f"parameter counts must be positive, got student={student_params}, teacher={teacher_params}")
    if teacher_acc <= 0:
        raise ToolError("the teacher's accuracy is 0; the reward's accuracy ratio is undefined")
    c = 1.0 - student_params / teacher_params
    return c * (2.0 - c) * student_acc / teacher_acc


def layer_features(dims: Sequence[int], removable: Sequence[bool]) -> torch.Tensor:
    """One row per linear layer: in/out sizes and parameters (normalised), relative position, removable flag."""
    import torch

    top = max(dims)
    params = [a * b + b for a, b in itertools.pairwise(dims)]
    rows = []
    layers = len(dims) - 1
    for i in range(layers):
        flag = removable[i] if i < len(removable) else False
        rows.append([dims[i] / top, dims[i + 1] / top, params[i] / max(params), i / max(layers - 1, 1), float(flag)])
    return torch.tensor(rows)


def _policies() -> tuple[type[nn.Module], type[nn.Module]]:
    import torch
    from torch import nn

    class RemovalPolicy(nn.Module):
        """Bidirectional LSTM over layer features → P(keep) per layer."""

        def __init__(self, features: int, hidden: int) -> None:
            super().__init__()
            self.lstm = nn.LSTM(features, hidden, batch_first=True, bidirectional=True)
            self.out = nn.Linear(2 * hidden, 1)
            with torch.no_grad():  # start by keeping most layers, as the paper's policy initialisation
                self.out.bias.fill_(1.5)

        def forward(self, feats: torch.Tensor) -> torch.Tensor:
            hidden, _ = self.lstm(feats.unsqueeze(0))
            return torch.sigmoid(self.out(hidden)).squeeze(0).squeeze(-1)

    class ShrinkPolicy(nn.Module):
        """Unidirectional LSTM over layer features and the previous action → distribution over shrink ratios."""

        def __init__(self, features: int, hidden: int, ratios: int) -> None:
            super().__init__()
            self.ratios = ratios
            self.cell = nn.LSTMCell(features + ratios, hidden)
            self.out = nn.Linear(hidden, ratios)
            with torch.no_grad():  # start near "keep everything" (the largest ratio)
                self.out.bias.zero_()
                self.out.bias[-1] = 1.0

        def sample(self, feats: torch.Tensor, generator: torch.Generator) -> tuple[list[int], torch.Tensor]:
            """Sample one ratio index per row; return the actions and the summed log-probability."""
            h = torch.zeros(1, self.cell.hidden_size)
            c = torch.zeros(1, self.cell.hidden_size)
            previous = torch.zeros(1, self.ratios)
            actions: list[int] = []
            log_prob = torch.zeros(())
            for row in feats:
                h, c = self.cell(torch.cat([row.unsqueeze(0), previous], dim=1), (h, c))
                probs = torch.softmax(self.out(h), dim=1).squeeze(0)
                action = int(torch.multinomial(probs, 1, generator=generator))
                log_prob = log_prob + probs[action].log()
                actions.append(action)
                previous = torch.nn.functional.one_hot(torch.tensor([action]), self.ratios).float()
            return actions, log_prob

    return RemovalPolicy, ShrinkPolicy


@dataclass
class PolicyTrace:
    """Rewards of every rollout and the best action found."""

    rewards: list[float] = field(default_factory=list)
    best_reward: float = float("-inf")
    best_action: tuple[int, ...] = ()


def _reinforce_step(
    optimizer: torch.optim.Optimizer, log_probs: list[torch.Tensor], rewards: list[float], baseline: float
) -> None:
    import torch

    optimizer.zero_grad(set_to_none=True)
    loss = -torch.stack([lp * (r - baseline) for lp, r in zip(log_probs, rewards, strict=True)]).mean()
    loss.backward()  # type: ignore[no-untyped-call]
    optimizer.step()


def train_removal_policy(
    dims: Sequence[int],
    removable: Sequence[bool],
    reward_fn: Callable[[tuple[int, ...]], float],
    *,
    updates: int,
    rollouts: int = 5,
    lr: float = 0.05,
    hidden: int = 16,
    seed: int = 0,
) -> PolicyTrace:
    """REINFORCE for the removal policy; an action is a keep flag (1/0) per linear layer (the head is always kept).

    ``reward_fn(keep_flags)`` scores a student. Returns the rewards and the best keep flags seen.
    """
    import torch

    removal, _ = _policies()
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    feats = layer_features(dims, removable)
    policy = removal(feats.shape[1], hidden)
    optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
    can_remove = torch.tensor([bool(r) for r in removable] + [False] * (feats.shape[0] - len(removable)))
    trace = PolicyTrace()
    baseline: float | None = None
    for _ in range(updates):
        log_probs, rewards = [], []
        for _ in range(rollouts):
            keep_p = policy(feats)
            draw = torch.rand(keep_p.shape, generator=generator) < keep_p.detach()
            keep = torch.where(can_remove, draw, torch.ones_like(draw))
            lp = torch.where(keep, keep_p, 1 - keep_p).clamp_min(1e-6).log()
            log_probs.append(lp[can_remove].sum())
            action = tuple(int(k) for k in keep.tolist())
            reward = reward_fn(action)
            rewards.append(reward)
            trace.rewards.append(reward)
            if reward > trace.best_reward:
                trace.best_reward, trace.best_action = reward, action
        mean_reward = sum(rewards) / len(rewards)
        baseline = mean_reward if baseline is None else 0.8 * baseline + 0.2 * mean_reward
        _reinforce_step(optimizer, log_probs, rewards, baseline)
    return trace


def train_shrink_policy(
    dims: Sequence[int],
    ratios: Sequence[float],
    reward_fn: Callable[[tuple[int, ...]], float],
    *,
    updates: int,
    rollouts: int = 5,
    lr: float = 0.05,
    hidden: int = 16,
    seed: int = 0,
) -> PolicyTrace:
    """REINFORCE for the shrink policy; an action is a ratio index per hidden layer of the network ``dims``."""
    import torch

    _, shrink = _policies()
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    hidden_layers = len(dims) - 2
    feats = layer_features(dims, [False] * (len(dims) - 1))[:hidden_layers]
    policy = shrink(feats.shape[1], hidden, len(ratios))
    optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
    trace = PolicyTrace()
    baseline: float | None = None
    for _ in range(updates):
        log_probs, rewards = [], []
        for _ in range(rollouts):
            actions, lp = policy.sample(feats, generator)  # type: ignore[operator]
            action = tuple(actions)
            reward = reward_fn(action)
            log_probs.append(lp)
            rewards.append(reward)
            trace.rewards.append(reward)
            if reward > trace.best_reward:
                trace.best_reward, trace.best_action = reward, action
        mean_reward = sum(rewards) / len(rewards)
        baseline = mean_reward if baseline is None else 0.8 * baseline + 0.2 * mean_reward
        _reinforce_step(optimizer, log_probs, rewards, baseline)
    return trace


@dataclass
class N2nResult:
    """The compressed student and how it was found."""

    student: nn.Sequential
    keep: tuple[int, ...]
    shrink: tuple[int, ...]
    widths: list[int]
    reward: float
    compression: float
    student_accuracy: float
    teacher_accuracy: float
    removal: PolicyTrace
    shrinkage: PolicyTrace
    evaluations: int


def n2n(
    teacher: nn.Sequential,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_val: torch.Tensor,
    y_val: torch.Tensor,
    *,
    removal_updates: int = 10,
    shrink_updates: int = 10,
    rollouts: int = 5,
    ratios: Sequence[float] = (0.25, 0.5, 0.75, 1.0),
    student_steps: int = 150,
    lr: float = 2e-3,
    policy_lr: float = 0.05,
    seed: int = 0,
) -> N2nResult:
    """Both N2N stages on ``teacher``: learn which layers to remove, then how much to shrink the rest.

    Students are initialised from the teacher's (kept, shrunk) weights and trained ``student_steps`` steps with
    KD; the reward uses their accuracy on ``(x_val, y_val)``.
    """
    import torch

    from malot_sparse.core.mlp import accuracy, linear_layers, train_classifier
    from malot_sparse.core.structured import drop_hidden_layers, mlp_widths, shrink_widths

    if not ratios or any(not 0 < r <= 1 for r in ratios):
        raise ToolError(f"shrink ratios must lie in (0, 1], got {list(ratios)}")
    layers = linear_layers(teacher)
    if len(layers) < 2:
        raise ToolError("the teacher needs at least one hidden layer to compress")
    dims = [layers[0].in_features, *mlp_widths(teacher), layers[-1].out_features]
    removable = [layer.in_features == layer.out_features for layer in layers[:-1]]
    teacher_params = sum(p.numel() for p in teacher.parameters())
    teacher_acc = accuracy(teacher, x_val, y_val)
    cache: dict[tuple[tuple[int, ...], tuple[int, ...]], tuple[float, float, nn.Sequential]] = {}

    def evaluate(keep: tuple[int, ...], shrink: tuple[int, ...]) -> tuple[float, float, nn.Sequential]:
        key = (keep, shrink)
        if key not in cache:
            student = drop_hidden_layers(teacher, [bool(k) for k in keep[: len(removable)]])
            if shrink:
                widths = [max(1, round(w * ratios[a])) for w, a in zip(mlp_widths(student), shrink, strict=True)]
                student = shrink_widths(student, widths)
            torch.manual_seed(seed)
            train_classifier(
                student, x_train, y_train, steps=student_steps, lr=lr, seed=seed, teacher=teacher, kd_weight=0.9
            )
            acc = accuracy(student, x_val, y_val)
            params = sum(p.numel() for p in student.parameters())
            cache[key] = (n2n_reward(params, teacher_params, acc, teacher_acc), acc, student)
        return cache[key]

    removal = train_removal_policy(
        dims,
        removable,
        lambda keep: evaluate(keep, ())[0],
        updates=removal_updates,
        rollouts=rollouts,
        lr=policy_lr,
        seed=seed,
    )
    keep = removal.best_action
    reduced = drop_hidden_layers(teacher, [bool(k) for k in keep[: len(removable)]])
    reduced_dims = [dims[0], *mlp_widths(reduced), dims[-1]]
    shrinkage = PolicyTrace()
    shrink: tuple[int, ...] = ()
    if shrink_updates > 0 and len(reduced_dims) > 2:
        shrinkage = train_shrink_policy(
            reduced_dims,
            ratios,
            lambda action: evaluate(keep, action)[0],
            updates=shrink_updates,
            rollouts=rollouts,
            lr=policy_lr,
            seed=seed + 1,
        )
        if shrinkage.best_reward > removal.best_reward:
            shrink = shrinkage.best_action
    reward, acc, student = evaluate(keep, shrink)
    params = sum(p.numel() for p in student.parameters())
    return N2nResult(
        student=student,
        keep=keep,
        shrink=shrink,
        widths=mlp_widths(student),
        reward=reward,
        compression=1.0 - params / teacher_params,
        student_accuracy=acc,
        teacher_accuracy=teacher_acc,
        removal=removal,
        shrinkage=shrinkage,
        evaluations=len(cache),
    )


_PAPER = "N2N Learning: Network to Network Compression via Policy Gradient Reinforcement Learning (Ashok et al., 2018)"


class N2nCompressInput(BaseModel):
    """Arguments of the ``n2n_compress`` tool."""

    data: str = Field(description="classification data: .safetensors or .npz with x (n, features) and y (n,)")
    out: str = Field(description="where to write the compressed student (.safetensors MLP checkpoint)")
    teacher: str | None = Field(default=None, description="teacher MLP checkpoint (trained here when absent)")
    teacher_widths: list[int] = Field(default=[64, 64, 64, 64], min_length=1)
    teacher_steps: int = Field(default=400, gt=0)
    removal_updates: int = Field(default=8, ge=1, description="policy updates of the layer-removal stage")
    shrink_updates: int = Field(default=8, ge=0, description="policy updates of the layer-shrink stage (0: skip)")
    rollouts: int = Field(default=4, ge=1, description="students sampled per policy update")
    ratios: list[float] = Field(default=[0.25, 0.5, 0.75, 1.0], min_length=1, description="shrink ratio choices")
    student_steps: int = Field(default=150, gt=0, description="KD training steps of each sampled student")
    lr: float = Field(default=2e-3, gt=0)
    policy_lr: float = Field(default=0.05, gt=0)
    test_fraction: float = Field(default=0.2, gt=0, lt=1)
    seed: int = 0


class N2nCompressOutput(BaseModel):
    """Result of the ``n2n_compress`` tool."""

    out: str
    kept_layers: list[int] = Field(description="1 = kept, 0 = removed, per hidden layer")
    student_widths: list[int]
    compression: float = Field(description="C = 1 − #params_student / #params_teacher")
    reward: float
    teacher_accuracy: float
    student_accuracy: float
    student_test_accuracy: float
    teacher_test_accuracy: float
    students_evaluated: int


@tool(
    name="n2n_compress",
    family="sparse",
    paper=_PAPER,
    tags=("sparse", "compression", "reinforcement-learning", "distillation", "supervised", "needs:labelled-data"),
    heavy=True,
)
def n2n_compress(args: N2nCompressInput) -> N2nCompressOutput:
    """N2N: compress an MLP teacher by a learned layer-removal policy then a layer-shrink policy (REINFORCE on the
    reward C(2 − C)·Acc_s/Acc_t), each student trained with knowledge distillation; writes the best student."""
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

    x, y = load_xy(args.data)
    classes = int(y.max()) + 1
    if classes < 2:
        raise ToolError("the data hold a single class", hint="give at least two classes")
    x_train, y_train, x_test, y_test = split(x, y, args.test_fraction, args.seed)
    x_fit, y_fit, x_val, y_val = split(x_train, y_train, 0.25, args.seed + 1)
    torch.manual_seed(args.seed)
    if args.teacher is not None:
        teacher, _, _ = load_mlp(args.teacher)
        check_matches(teacher, x.shape[1], classes)
    else:
        teacher = build_mlp(x.shape[1], args.teacher_widths, classes)
        train_classifier(teacher, x_fit, y_fit, steps=args.teacher_steps, lr=args.lr, seed=args.seed)
    teacher.eval()
    result = n2n(
        teacher,
        x_fit,
        y_fit,
        x_val,
        y_val,
        removal_updates=args.removal_updates,
        shrink_updates=args.shrink_updates,
        rollouts=args.rollouts,
        ratios=args.ratios,
        student_steps=args.student_steps,
        lr=args.lr,
        policy_lr=args.policy_lr,
        seed=args.seed,
    )
    out = save_mlp(result.student, Path(args.out), extra={"method": "n2n", "compression": result.compression})
    return N2nCompressOutput(
        out=str(out),
        kept_layers=list(result.keep[:-1]),
        student_widths=result.widths,
        compression=result.compression,
        reward=result.reward,
        teacher_accuracy=result.teacher_accuracy,
        student_accuracy=result.student_accuracy,
        student_test_accuracy=accuracy(result.student, x_test, y_test),
        teacher_test_accuracy=accuracy(teacher, x_test, y_test),
        students_evaluated=result.evaluations,
    )
