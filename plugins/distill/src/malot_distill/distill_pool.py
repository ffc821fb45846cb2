"""DistillNearest / DistillWeighted (Borup, Phoo & Hariharan, ICCV 2023): distil from the most task-similar sources.

*Distilling from Similar Tasks for Transfer Learning on a Budget.* A pool of pre-trained source models is scored by
task similarity on the few labelled target samples; the paper's score is how well a linear classifier on a source's
features fits the target labels. ``DistillNearest`` distils the single best source into a small student;
``DistillWeighted`` distils all of them with weights ``α = softmax(score / τ)``. The student's features are matched
to each source's features through a per-source linear projection ``h_s``:

    L = Σ_s α_s · mean ‖h_s(f(x)) − g_s(x)‖²   (all target images, labelled and unlabelled)   + CE(c(f(x_l)), y_l)

Exact properties (tests): the weights sum to 1; ``τ → 0`` gives a one-hot weight on the best-scoring source and the
training is then identical to DistillNearest (sources with weight exactly 0 are skipped and every projection head is
seeded by its source index); the feature term is zero when the projected student features equal the source's; with
``feature_weight = 0`` the objective is plain cross-entropy. Paper: the scoring rule, the weighting and the loss.
Library: scikit-learn (``LogisticRegression`` with cross-validation) for the linear-probe score, PyTorch for training.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_distill.core.kd import feature_l2

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "DistillPoolInput",
    "DistillPoolOutput",
    "PoolResult",
    "distill_from_pool",
    "distill_pool",
    "pool_weights",
    "task_similarity",
]

_PAPER = "Borup, Phoo & Hariharan, ICCV 2023: Distilling from Similar Tasks for Transfer Learning on a Budget"


def task_similarity(features: torch.Tensor, labels: torch.Tensor, folds: int = 3, seed: int = 0) -> float:
    """Cross-validated accuracy of a logistic-regression probe on ``features`` for ``labels`` (the paper's score)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.preprocessing import StandardScaler

    x = features.detach().double().numpy()
    y = labels.numpy()
    smallest = int(np.bincount(y).min()) if y.size else 0
    k = max(2, min(folds, smallest))
    if smallest < 2:
        raise ToolError("every target class needs at least 2 labelled samples to score sources")
    x = StandardScaler().fit_transform(x)
    probe = LogisticRegression(max_iter=500)
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return float(cross_val_score(probe, x, y, cv=cv).mean())


def pool_weights(scores: Sequence[float], tau: float | None) -> list[float]:
    """``softmax(score / τ)``; ``tau=None`` or ``0`` gives DistillNearest's one-hot weight on the best score."""
    import torch

    values = torch.tensor(list(scores), dtype=torch.float64)
    if values.numel() == 0:
        raise ToolError("the source pool is empty", hint="pass at least one source model")
    if tau is None or tau == 0:
        out = torch.zeros_like(values)
        out[int(values.argmax())] = 1.0
        return [float(v) for v in out]
    if tau < 0:
        raise ToolError(f"tau must be positive, got {tau}")
    return [float(v) for v in torch.softmax(values / tau, dim=0)]


@dataclass
class PoolResult:
    """Scores, weights, per-step losses, and the trained projection heads (by source index)."""

    scores: list[float]
    weights: list[float]
    losses: list[float]


def _features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    import torch

    with torch.no_grad():
        feats = getattr(model, "features", None)
        out: torch.Tensor = feats(x) if callable(feats) else model(x)
        return out


def distill_pool(
    student: nn.Module,
    sources: Sequence[nn.Module],
    x_labeled: torch.Tensor,
    y_labeled: torch.Tensor,
    x_unlabeled: torch.Tensor | None = None,
    *,
    tau: float | None,
    steps: int,
    lr: float = 1e-3,
    feature_weight: float = 1.0,
    batch_size: int = 64,
    seed: int = 0,
    scores: Sequence[float] | None = None,
) -> PoolResult:
    """Score the sources, weight them, and train ``student`` (an MLP with ``features`` and ``head``) in place."""
    import torch
    import torch.nn.functional as F

    from malot_distill.core.train import batches, fit

    if x_labeled.shape[0] != y_labeled.shape[0]:
        raise ToolError(f"{x_labeled.shape[0]} labelled inputs but {y_labeled.shape[0]} labels")
    x_all = x_labeled if x_unlabeled is None else torch.cat([x_labeled, x_unlabeled])
    source_feats = [_features(s, x_all) for s in sources]
    if scores is None:
        scores = [task_similarity(f[: x_labeled.shape[0]], y_labeled, seed=seed) for f in source_feats]
    weights = pool_weights(scores, tau)
    active = [i for i, w in enumerate(weights) if w > 0.0]
    width = int(student.features(x_all[:1]).shape[-1])  # type: ignore[operator]
    heads = torch.nn.ModuleDict()
    for i in active:
        with torch.random.fork_rng():
            torch.manual_seed(seed * 1000 + i)
            heads[str(i)] = torch.nn.Linear(width, source_feats[i].shape[-1])
    lab_order = batches(x_labeled.shape[0], batch_size, steps, seed)
    all_order = batches(x_all.shape[0], batch_size, steps, seed + 1)

    def loss_fn(step: int) -> torch.Tensor:
        xl, yl = x_labeled[lab_order[step]], y_labeled[lab_order[step]]
        loss = F.cross_entropy(student(xl), yl)
        if feature_weight and active:
            idx = all_order[step]
            f = student.features(x_all[idx])  # type: ignore[operator]
            match = sum(weights[i] * feature_l2(heads[str(i)](f), source_feats[i][idx]).mean() for i in active)
            loss = loss + feature_weight * match
        return loss

    student.train()
    losses = fit([*student.parameters(), *heads.parameters()], loss_fn, steps=steps, lr=lr)
    student.eval()
    return PoolResult(scores=list(scores), weights=weights, losses=losses)


class DistillPoolInput(BaseModel):
    """Arguments of ``distill_from_pool``."""

    sources: list[str] = Field(min_length=1, description="source models: distill MLP .safetensors files")
    data: str = Field(description=".safetensors with x, y (few labelled target samples), optional x_unlabeled")
    out: str = Field(description="where to write the student (.safetensors)")
    mode: Literal["nearest", "weighted"] = "weighted"
    tau: float = Field(default=0.05, gt=0, description="softmax temperature over scores (weighted mode)")
    hidden: list[int] = Field(default=[64], min_length=1, description="student hidden layer sizes")
    steps: int = Field(default=300, ge=1)
    lr: float = Field(default=1e-3, gt=0)
    feature_weight: float = Field(default=1.0, ge=0)
    batch_size: int = Field(default=64, ge=1)
    seed: int = 0


class DistillPoolOutput(BaseModel):
    """Result of ``distill_from_pool``."""

    out: str
    scores: list[float] = Field(description="task similarity of each source (linear-probe CV accuracy)")
    weights: list[float] = Field(description="distillation weight of each source (sum 1)")
    nearest: int = Field(description="index of the best-scoring source")
    loss_first: float
    loss_last: float
    test_accuracy: float | None = Field(description="on x_test/y_test when the data file has them")


@tool(
    name="distill_from_pool",
    family="distill",
    paper=_PAPER,
    tags=("distillation", "transfer", "few-shot", "model-selection", "needs:sources", "needs:data"),
)
def distill_from_pool(args: DistillPoolInput) -> DistillPoolOutput:
    """Train a small student from a pool of source models, weighted by task similarity (DistillNearest/Weighted).

    Each source is scored by a cross-validated linear probe on its features of the labelled target samples; the
    student matches the sources' features (weights ``softmax(score/τ)``, or only the best in nearest mode) on all
    target inputs while learning the labels.
    """
    from malot_distill.core.data import check_labels, load_tensors, require
    from malot_distill.core.mlp import build_mlp, load_mlp, save_mlp
    from malot_distill.core.train import accuracy

    sources = [load_mlp(p) for p in args.sources]
    tensors = load_tensors(args.data)
    x = require(tensors, "x", dim=2)
    y = check_labels(x, require(tensors, "y"))
    x_u = require(tensors, "x_unlabeled", dim=2) if "x_unlabeled" in tensors else None
    for path, src in zip(args.sources, sources, strict=True):
        if getattr(src, "sizes", [0])[0] != x.shape[1]:
            raise ToolError(f"source {path} takes {getattr(src, 'sizes', [0])[0]} features, the data has {x.shape[1]}")
    if x_u is not None and x_u.shape[1] != x.shape[1]:
        raise ToolError("x_unlabeled and x have different widths")
    classes = int(y.max()) + 1
    student = build_mlp([x.shape[1], *args.hidden, classes], seed=args.seed)
    result = distill_pool(
        student,
        sources,
        x,
        y,
        x_u,
        tau=None if args.mode == "nearest" else args.tau,
        steps=args.steps,
        lr=args.lr,
        feature_weight=args.feature_weight,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    save_mlp(student, args.out)
    test = None
    if "x_test" in tensors:
        xt = require(tensors, "x_test", dim=2)
        test = accuracy(student, xt, check_labels(xt, require(tensors, "y_test"), classes))
    return DistillPoolOutput(
        out=args.out,
        scores=result.scores,
        weights=result.weights,
        nearest=max(range(len(result.scores)), key=lambda i: result.scores[i]),
        loss_first=result.losses[0],
        loss_last=result.losses[-1],
        test_accuracy=test,
    )
