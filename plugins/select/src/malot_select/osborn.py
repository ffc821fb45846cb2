"""OSBORN (K B et al., ICCV 2023, "Building a Winning Team: Selecting Source Model Ensembles using a Submodular
Transferability Estimation Approach"): pick an ensemble of source models for a target task with optimal transport.

For each candidate model ``m`` we have its embeddings of (a sample of) its own source data with source labels, and of
the target data. With an exact OT coupling ``π`` (POT's ``ot.emd``, squared Euclidean cost on jointly standardised
features) between source and target samples we split the paper's three terms over target samples ``j``:

* **domain difference**: ``dₘ(j) = n_t Σᵢ πᵢⱼ Cᵢⱼ``; its mean over ``j`` is the OT distance ``W_D(m)``;
* **task difference** (OT conditional entropy, as in OTCE): ``P(a, b) = Σ_{i: ysᵢ=a, j: ytⱼ=b} πᵢⱼ``,
  ``hₘ(j) = -Σ_a π̃(a|j) log P(ytⱼ | a)`` with ``π̃(a|j) = n_t Σ_{i: ysᵢ=a} πᵢⱼ``; its mean is ``H(Y_t | Y_s)``;
* **cohesiveness**: ``κₘ(j)``, the agreement (``Σ_b p̂ₘ(b|j) p̄(b|j)``) of the target label that model ``m``
  transports to ``j`` with the pool's consensus ``p̄`` (the mean over candidates).

An ensemble ``S`` scores ``f(S) = (1/n_t) Σ_j max(b_j, max_{m∈S} [-λ_d dₘ(j) - λ_h hₘ(j) + λ_c κₘ(j)])`` where
``b_j`` is the worst candidate's value at ``j`` (so ``f(∅) = mean b``). This is a facility-location function:
monotone and submodular, so greedy selection is within ``1 - 1/e`` of the best ensemble of its size, gains diminish,
and a model already in ``S`` (or an exact duplicate of one) adds exactly nothing. The three terms are the paper's; the
per-sample max that makes the submodularity exact is our reading of how the terms combine over an ensemble.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_select.core.arrays import load_labels, load_matrix

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = [
    "OsbornCandidate",
    "OsbornInput",
    "OsbornOutput",
    "OsbornTerms",
    "greedy_select",
    "osborn_terms",
    "osborn_value",
    "select_ensemble_tool",
]

_PAPER = "K B et al. 2023, Building a Winning Team: Selecting Source Model Ensembles (OSBORN, ICCV)"


@dataclass(frozen=True)
class OsbornTerms:
    """Per-target-sample domain cost ``d``, conditional entropy ``h`` and transported target-label distribution."""

    domain: NDArray[np.float64]
    entropy: NDArray[np.float64]
    label_dist: NDArray[np.float64]

    @property
    def domain_distance(self) -> float:
        """``W_D``: the OT cost between the source and target embeddings."""
        return float(self.domain.mean())

    @property
    def conditional_entropy(self) -> float:
        """``H(Y_t | Y_s)`` under the OT coupling."""
        return float(self.entropy.mean())


def osborn_terms(
    source: NDArray[np.float64],
    source_labels: NDArray[np.int64],
    target: NDArray[np.float64],
    target_labels: NDArray[np.int64],
) -> OsbornTerms:
    """Solve the exact OT between one model's source and target embeddings and split OSBORN's terms per sample."""
    import numpy as np
    import ot

    joint = np.vstack([source, target])
    mean, std = joint.mean(axis=0), joint.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    xs, xt = (source - mean) / std, (target - mean) / std
    cost = ot.dist(xs, xt, metric="sqeuclidean") / xs.shape[1]
    ns, nt = xs.shape[0], xt.shape[0]
    plan = ot.emd(np.full(ns, 1.0 / ns), np.full(nt, 1.0 / nt), cost)
    domain = nt * np.sum(plan * cost, axis=0)
    n_src = int(source_labels.max()) + 1
    n_tgt = int(target_labels.max()) + 1
    src_onehot = np.eye(n_src)[source_labels]
    transported = nt * src_onehot.T @ plan  # π̃(a | j): source classes x target samples, columns sum to 1
    joint_ab = src_onehot.T @ plan @ np.eye(n_tgt)[target_labels]  # P(a, b)
    p_a = joint_ab.sum(axis=1, keepdims=True)
    cond = np.divide(joint_ab, p_a, out=np.zeros_like(joint_ab), where=p_a > 0)  # P(b | a)
    log_cond = np.log(np.where(cond > 0, cond, 1.0))
    entropy = -np.sum(transported * log_cond[:, target_labels], axis=0)
    label_dist = (transported.T @ cond).T  # p̂(b | j) = Σ_a π̃(a|j) P(b|a): target classes x samples
    return OsbornTerms(domain=domain, entropy=entropy, label_dist=label_dist)


def _utilities(terms: Sequence[OsbornTerms], weights: tuple[float, float, float]) -> NDArray[np.float64]:
    """Per-candidate, per-sample utility ``-λ_d d - λ_h h + λ_c κ`` (candidates x target samples)."""
    import numpy as np

    w_d, w_h, w_c = weights
    consensus = np.mean([t.label_dist for t in terms], axis=0)
    return np.stack([-w_d * t.domain - w_h * t.entropy + w_c * np.sum(t.label_dist * consensus, axis=0) for t in terms])


def osborn_value(utilities: NDArray[np.float64], chosen: Sequence[int]) -> float:
    """``f(S)``: the mean over target samples of the best chosen candidate's utility (floored at the worst one's)."""
    import numpy as np

    floor = utilities.min(axis=0)
    if not chosen:
        return float(floor.mean())
    return float(np.maximum(floor, utilities[list(chosen)].max(axis=0)).mean())


def greedy_select(utilities: NDArray[np.float64], k: int) -> tuple[list[int], list[float]]:
    """Greedy maximisation of :func:`osborn_value`: the chosen indices and each step's marginal gain.

    Ties go to the lower index, so an exact duplicate of a chosen model is never preferred over a useful one.
    """
    chosen: list[int] = []
    gains: list[float] = []
    current = osborn_value(utilities, chosen)
    for _ in range(min(k, utilities.shape[0])):
        best, best_gain = -1, -float("inf")
        for m in range(utilities.shape[0]):
            if m in chosen:
                continue
            gain = osborn_value(utilities, [*chosen, m]) - current
            if gain > best_gain:
                best, best_gain = m, gain
        chosen.append(best)
        gains.append(best_gain)
        current += best_gain
    return chosen, gains


class OsbornCandidate(BaseModel):
    """One source model: its embeddings of its own source data (with labels) and of the target data."""

    name: str
    source_features: Any = Field(description="n_s x D embeddings of source samples (path or nested lists)")
    source_labels: Any = Field(description="source class labels, one per source row")
    target_features: Any = Field(description="n_t x D embeddings of the target samples by this model")


class OsbornInput(BaseModel):
    """Arguments of ``select_ensemble``."""

    candidates: list[OsbornCandidate] = Field(
        min_length=1, description="source models: name, source_features, source_labels, target_features"
    )
    target_labels: Any = Field(description="target class labels, one per target row")
    k: int = Field(ge=1, description="ensemble size")
    domain_weight: float = Field(1.0, ge=0, description="weight of the OT domain distance")
    entropy_weight: float = Field(1.0, ge=0, description="weight of the OT conditional entropy")
    cohesion_weight: float = Field(1.0, ge=0, description="weight of the agreement with the pool consensus")


class OsbornModelTerms(BaseModel):
    """One candidate's OSBORN terms on its own."""

    name: str
    domain_distance: float
    conditional_entropy: float
    single_score: float


class OsbornOutput(BaseModel):
    """The greedy ensemble, the marginal gain of each pick, the ensemble's score, and every candidate's terms."""

    selected: list[str]
    gains: list[float]
    score: float
    candidates: list[OsbornModelTerms]


@tool(
    name="select_ensemble",
    family="select",
    paper=_PAPER,
    tags=("transferability", "ensemble", "model-selection", "optimal-transport", "submodular", "needs:features"),
)
def select_ensemble_tool(args: OsbornInput) -> OsbornOutput:
    """Choose k source models for a target task by OSBORN (OT domain distance, OT conditional entropy, cohesion),
    greedily maximising a submodular ensemble score; returns the picks in order with their marginal gains."""
    if args.k > len(args.candidates):
        raise ToolError(f"k={args.k} exceeds the {len(args.candidates)} candidates", hint="lower k")
    names = [c.name for c in args.candidates]
    if len(set(names)) != len(names):
        raise ToolError("candidate names must be unique", hint="rename the duplicates")
    terms = []
    n_target: int | None = None
    labels = None
    for c in args.candidates:
        xs = load_matrix(c.source_features, f"{c.name}.source_features", min_rows=2)
        ys = load_labels(c.source_labels, f"{c.name}.source_labels", rows=xs.shape[0], min_classes=1)
        xt = load_matrix(c.target_features, f"{c.name}.target_features", rows=n_target, min_rows=2)
        if xt.shape[1] != xs.shape[1]:
            raise ToolError(
                f"{c.name}: source features have {xs.shape[1]} dims, target features {xt.shape[1]}",
                hint="embed source and target data with the same model",
            )
        if labels is None:
            n_target = xt.shape[0]
            labels = load_labels(args.target_labels, "target_labels", rows=n_target, min_classes=1)
        terms.append(osborn_terms(xs, ys, xt, labels))
    utilities = _utilities(terms, (args.domain_weight, args.entropy_weight, args.cohesion_weight))
    chosen, gains = greedy_select(utilities, args.k)
    singles = [osborn_value(utilities, [m]) for m in range(len(terms))]
    return OsbornOutput(
        selected=[names[m] for m in chosen],
        gains=gains,
        score=osborn_value(utilities, chosen),
        candidates=[
            OsbornModelTerms(
                name=n, domain_distance=t.domain_distance, conditional_entropy=t.conditional_entropy, single_score=s
            )
            for n, t, s in zip(names, terms, singles, strict=True)
        ],
    )
