"""Active multi-task representation learning (Chen, Jamieson & Du, "Active Multi-Task Representation Learning",
ICML 2022): how many samples to draw from each source task for a target task.

With a shared representation ``φ`` and one linear head ``w_t`` per source task, the target's head is modelled as a
combination ``w_0 ≈ Σ_t ν_t w_t`` of the source heads. ``ν`` is estimated from the few labelled target samples by
regressing the target labels on the source tasks' predictions ``φ(x)ᵀ w_t``; in the sparse case (few relevant
sources, the paper's L1 variant) this is a Lasso:

    ν̂ = argmin_ν  1/(2n) ‖y_target − P ν‖² + α ‖ν‖₁,      P[i, t] = φ(x_i)ᵀ w_t.

The next round's source budget ``N`` is then allocated in proportion to the relevance, ``n_t ∝ |ν̂_t|`` (the
paper's L2 variant, ``n_t ∝ ν̂_t²``, is offered as ``weighting="l2"``), optionally on top of a uniform floor per
task. The Lasso is scikit-learn's ``Lasso``/``LassoCV``; the relevance-proportional allocation (made exact by a
largest-remainder split) is the paper's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_data.core.arrays import check_matrix, load_array
from malot_data.core.budget import proportional_split

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["AllocateSamplesInput", "AllocateSamplesOutput", "allocate_budget", "allocate_samples", "task_relevance"]

_PAPER = "Active Multi-Task Representation Learning (Chen, Jamieson & Du, ICML 2022)"


def task_relevance(
    source_predictions: Any, target: Any, alpha: float | None = None, seed: int = 0
) -> tuple[NDArray[np.float64], float]:
    """Lasso estimate ``ν̂`` of the target on the source tasks' predictions, and the ``α`` used (cross-validated
    with scikit-learn's ``LassoCV`` when ``alpha`` is None)."""
    import numpy as np
    from sklearn.linear_model import Lasso, LassoCV

    p = check_matrix(source_predictions, name="source_predictions", min_rows=2)
    y = np.asarray(target, dtype=np.float64).reshape(-1)
    if y.size != p.shape[0]:
        raise ToolError(
            f"target has {y.size} values but source_predictions has {p.shape[0]} rows",
            hint="give one target label per target sample",
        )
    if not np.isfinite(y).all():
        raise ToolError("target contains NaN or infinite values", hint="drop unlabelled samples")
    if alpha is None:
        folds = min(5, p.shape[0])
        if folds < 2:
            raise ToolError("cross-validating alpha needs at least 2 target samples", hint="pass alpha")
        model = LassoCV(cv=folds, fit_intercept=True, random_state=seed, max_iter=20000).fit(p, y)
        return np.asarray(model.coef_, dtype=np.float64), float(model.alpha_)
    if alpha < 0:
        raise ToolError(f"alpha={alpha} must be >= 0")
    lasso = Lasso(alpha=alpha, fit_intercept=True, max_iter=20000).fit(p, y)
    return np.asarray(lasso.coef_, dtype=np.float64), float(alpha)


def allocate_budget(relevance: Any, budget: int, *, weighting: Literal["l1", "l2"] = "l1", floor: int = 0) -> list[int]:
    """Samples per source task: ``floor`` each, the rest ∝ ``|ν|`` (``l1``) or ``ν²`` (``l2``); sums to ``budget``."""
    import numpy as np

    nu = np.asarray(relevance, dtype=np.float64).reshape(-1)
    if nu.size == 0 or not np.isfinite(nu).all():
        raise ToolError("relevance must be a non-empty vector of finite numbers")
    if floor < 0 or floor * nu.size > budget:
        raise ToolError(
            f"floor={floor} per task × {nu.size} tasks exceeds the budget {budget}",
            hint="lower the floor or raise the budget",
        )
    weights = np.abs(nu) if weighting == "l1" else nu**2
    rest = proportional_split([float(w) for w in weights], budget - floor * nu.size)
    return [floor + r for r in rest]


class AllocateSamplesInput(BaseModel):
    """Arguments of ``allocate_samples`` (array files: .npy, .npz, FILE.npz:KEY or .csv)."""

    target: str = Field(description="labels (regression values or ±1) of the labelled target samples (n)")
    source_predictions: str | None = Field(
        default=None, description="each source task's prediction on the target samples (n × tasks)"
    )
    target_features: str | None = Field(default=None, description="or: shared-representation features (n × d)...")
    source_heads: str | None = Field(default=None, description="...and the source tasks' linear heads (tasks × d)")
    budget: int = Field(gt=0, description="source samples to allocate next round (met exactly)")
    weighting: Literal["l1", "l2"] = Field(default="l1", description="l1: ∝|ν̂| (the Lasso variant); l2: ∝ν̂²")
    alpha: float | None = Field(default=None, ge=0, description="Lasso penalty (default: 5-fold LassoCV)")
    floor: int = Field(default=0, ge=0, description="uniform samples per task before the proportional part")
    support_tol: float = Field(default=1e-8, ge=0, description="|ν̂| above this counts as relevant")
    seed: int = 0


class AllocateSamplesOutput(BaseModel):
    """Result of ``allocate_samples``."""

    relevance: list[float]
    support: list[int]
    alpha: float
    allocation: list[int]


@tool(
    name="allocate_samples",
    family="data",
    paper=_PAPER,
    tags=("source-selection", "multi-task", "transfer", "few-shot", "active-learning", "needs:source-predictions"),
)
def allocate_samples(args: AllocateSamplesInput) -> AllocateSamplesOutput:
    """Which source corpora to sample for a target: Lasso relevance of each source task, budget ∝ relevance.

    Regresses the few target labels on the source tasks' predictions with a Lasso (sparse ν̂) and splits the next
    round's source budget in proportion to |ν̂| (or ν̂²), exactly.
    """
    import numpy as np

    if args.source_predictions is not None:
        preds = check_matrix(load_array(args.source_predictions, name="source_predictions"), name="source_predictions")
    elif args.target_features is not None and args.source_heads is not None:
        feats = check_matrix(load_array(args.target_features, name="target_features"), name="target_features")
        heads = check_matrix(load_array(args.source_heads, name="source_heads"), name="source_heads")
        if heads.shape[1] != feats.shape[1]:
            raise ToolError(
                f"source_heads have {heads.shape[1]} columns, features {feats.shape[1]}",
                hint="pass one head per row (tasks × d)",
            )
        preds = feats @ heads.T
    else:
        raise ToolError("pass source_predictions, or target_features with source_heads")
    target = np.asarray(load_array(args.target, name="target"), dtype=np.float64).reshape(-1)
    nu, alpha = task_relevance(preds, target, args.alpha, args.seed)
    allocation = allocate_budget(nu, args.budget, weighting=args.weighting, floor=args.floor)
    return AllocateSamplesOutput(
        relevance=[float(v) for v in nu],
        support=[int(i) for i in np.flatnonzero(np.abs(nu) > args.support_tol)],
        alpha=alpha,
        allocation=allocation,
    )
