"""Adapt-∞ data selection (Maharana et al., "Adapt-∞: Scalable Continual Multimodal Instruction Tuning via Dynamic
Data Selection", 2024).

From a pool of training examples (with the current model's outputs on them), pick exactly ``budget``:

1. **Pseudo-skill clusters (§3.1)**: each example's gradient embedding is the gradient of its cross-entropy with
   respect to the last layer, ``g_i = (p_i − onehot(y_i)) ⊗ h_i`` (``h_i`` the penultimate features); it is
   random-projected to a low dimension, L2-normalised and clustered with k-means into pseudo-skills.
2. **Per-cluster scorer choice (§3.2)**: for every cluster, each candidate score function (EL2N ``‖p − onehot(y)‖``,
   entropy ``H(p)``, perplexity ``exp(loss)``) is computed; the one whose histogram over the cluster has the largest
   entropy — the most spread-out, most informative one — is used. A constant score has entropy 0 and is never chosen
   over a varying one.
3. **Coverage-centric sampling (CCS, Zheng et al. 2023)**: the cluster's budget (proportional to its size) is spread
   over equal-width score strata, filling the sparsest stratum first, so easy and hard examples are both covered.
4. **SemDeDup (optional)**: duplicates are pruned permanently from the pool first (see :mod:`malot_data.semdedup`).

The random projection is scikit-learn's ``GaussianRandomProjection`` and k-means scikit-learn's ``KMeans``; the
embedding, scorer choice and sampling are the paper's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_data.core.arrays import check_labels, check_matrix, load_array, save_arrays
from malot_data.core.budget import proportional_split
from malot_data.core.stats import entropy, histogram_entropy, to_probabilities

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = [
    "ClusterChoice",
    "SelectInstructionsInput",
    "SelectInstructionsOutput",
    "Selection",
    "adapt_inf_select",
    "candidate_scores",
    "ccs_sample",
    "choose_scorer",
    "gradient_embeddings",
    "select_instructions",
]

MAX_GRADIENT_WIDTH = 2_000_000
"""Largest ``classes × features`` last-layer gradient an example may have before projection."""

_PAPER = "Adapt-∞: Scalable Continual Multimodal Instruction Tuning via Dynamic Data Selection (Maharana et al., 2024)"


def gradient_embeddings(features: Any, probs: Any, labels: Any, dim: int = 64, seed: int = 0) -> NDArray[np.float64]:
    """Random-projected, L2-normalised last-layer gradient embeddings ``(p − onehot(y)) ⊗ h`` (one row each)."""
    import numpy as np
    from sklearn.random_projection import GaussianRandomProjection

    h = check_matrix(features, name="features")
    p = check_matrix(probs, name="probs", rows=h.shape[0])
    y = check_labels(labels, name="labels", rows=h.shape[0], classes=p.shape[1])
    if p.shape[1] * h.shape[1] > MAX_GRADIENT_WIDTH:
        raise ToolError(
            f"gradient embeddings would have {p.shape[1]}×{h.shape[1]} columns per example",
            hint="pass outputs over fewer classes (e.g. the target token's top candidates) or smaller features",
        )
    residual = p.copy()
    residual[np.arange(y.size), y] -= 1.0
    grads = np.einsum("nc,nd->ncd", residual, h).reshape(h.shape[0], -1)
    if dim < grads.shape[1]:
        grads = GaussianRandomProjection(n_components=dim, random_state=seed).fit_transform(grads)
    norms = np.linalg.norm(grads, axis=1, keepdims=True)
    out: NDArray[np.float64] = grads / np.where(norms > 0, norms, 1.0)
    return out


def candidate_scores(probs: Any, labels: Any, losses: Any | None = None) -> dict[str, NDArray[np.float64]]:
    """The paper's score functions: EL2N, entropy and perplexity (``exp(loss)``, or ``1/p_y`` without losses)."""
    import numpy as np

    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    onehot = np.zeros_like(p)
    onehot[np.arange(y.size), y] = 1.0
    if losses is None:
        nll = -np.log(np.clip(p[np.arange(y.size), y], 1e-12, None))
    else:
        nll = np.asarray(losses, dtype=np.float64).reshape(-1)
        if nll.size != y.size or not np.isfinite(nll).all():
            raise ToolError(f"losses must be {y.size} finite numbers, one per example")
    return {"el2n": np.linalg.norm(p - onehot, axis=1), "entropy": entropy(p), "perplexity": np.exp(nll)}


def choose_scorer(scores: Mapping[str, Any], members: Any, bins: int = 10) -> tuple[str, dict[str, float]]:
    """The scorer whose histogram over ``members`` has the highest entropy (ties: the first name), and all entropies."""
    import numpy as np

    idx = np.asarray(members, dtype=np.int64)
    entropies = {name: histogram_entropy(np.asarray(values)[idx], bins) for name, values in scores.items()}
    best = max(entropies, key=lambda name: entropies[name])  # max keeps the first of equal values
    return best, entropies


def ccs_sample(values: Any, budget: int, strata: int = 10, prune_hard: float = 0.0, seed: int = 0) -> list[int]:
    """Coverage-centric sampling: ``budget`` positions of ``values``, spread over equal-width score strata.

    ``prune_hard`` drops that fraction of the highest scores first (CCS's β, for likely mislabelled examples); the
    sparsest remaining stratum is filled first and every stratum gets at most an equal share of what is left.
    """
    import numpy as np

    v = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    order = np.argsort(v, kind="stable")
    cut = int(np.floor(prune_hard * v.size))
    candidates = order[: v.size - cut] if v.size - cut >= budget else order[:budget]
    if budget > candidates.size:
        raise ToolError(f"budget {budget} exceeds the {candidates.size} examples available")
    lo, hi = float(v[candidates].min()), float(v[candidates].max())
    edges = np.linspace(lo, hi, strata + 1)
    stratum = np.clip(np.searchsorted(edges, v[candidates], side="right") - 1, 0, strata - 1)
    groups = [list(candidates[stratum == s]) for s in range(strata)]
    groups = [g for g in groups if g]
    chosen: list[int] = []
    left = budget
    while left > 0 and groups:
        groups.sort(key=len)
        group = groups.pop(0)
        take = min(len(group), left // (len(groups) + 1) + (1 if left % (len(groups) + 1) else 0))
        take = min(take, left)
        chosen.extend(int(i) for i in rng.choice(np.asarray(group), size=take, replace=False))
        left -= take
    return sorted(chosen)


class ClusterChoice(BaseModel):
    """One pseudo-skill cluster: its size, budget, the scorer chosen for it and every scorer's histogram entropy."""

    cluster: int
    size: int
    budget: int
    scorer: str
    histogram_entropy: dict[str, float]


class Selection(BaseModel):
    """Selected example indices (sorted), examples removed as duplicates first, and the per-cluster choices."""

    indices: list[int]
    deduplicated: list[int]
    clusters: list[ClusterChoice]


def adapt_inf_select(
    features: Any,
    probs: Any,
    labels: Any,
    budget: int,
    *,
    losses: Any | None = None,
    extra_scores: Mapping[str, Any] | None = None,
    clusters: int = 8,
    dim: int = 64,
    strata: int = 10,
    prune_hard: float = 0.0,
    dedup_eps: float | None = None,
    allocation: Literal["proportional", "uniform"] = "proportional",
    seed: int = 0,
) -> Selection:
    """Adapt-∞ selection of exactly ``budget`` examples (see the module docstring)."""
    import numpy as np
    from sklearn.cluster import KMeans

    from malot_data.semdedup import duplicate_scores, semdedup_keep

    emb = gradient_embeddings(features, probs, labels, dim, seed)
    n = emb.shape[0]
    if not 0 < budget <= n:
        raise ToolError(f"budget={budget} must be between 1 and the {n} examples", hint="lower the budget")
    scores = candidate_scores(probs, labels, losses)
    for name, values in (extra_scores or {}).items():
        arr = np.asarray(values, dtype=np.float64).reshape(-1)
        if arr.size != n or not np.isfinite(arr).all():
            raise ToolError(f"score {name!r} must be {n} finite numbers, one per example")
        scores[name] = arr
    pool = np.arange(n)
    removed: list[int] = []
    if dedup_eps is not None:  # SemDeDup over the features; k-means clusters of ~2000 keep the pair matrices small
        dup = duplicate_scores(check_matrix(features, name="features"), max(1, -(-n // 2000)), seed)
        kept = semdedup_keep(dup, eps=dedup_eps)
        if len(kept) < budget:  # never deduplicate below the budget: drop the most duplicated only
            kept = semdedup_keep(dup, budget=budget)
        removed = sorted(set(range(n)) - set(kept))
        pool = np.asarray(kept, dtype=np.int64)
    k = min(clusters, pool.size)
    labels_k = (
        KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(emb[pool])
        if k > 1
        else (np.zeros(pool.size, np.int64))
    )
    members = [pool[labels_k == c] for c in range(k)]
    sizes = [int(m.size) for m in members]
    weights = [float(s) for s in sizes] if allocation == "proportional" else [1.0 if s else 0.0 for s in sizes]
    parts = proportional_split(weights, budget, caps=sizes)
    chosen: list[int] = []
    report: list[ClusterChoice] = []
    for c, (group, part) in enumerate(zip(members, parts, strict=True)):
        if group.size == 0:
            continue
        name, ents = choose_scorer(scores, group)
        picked = ccs_sample(scores[name][group], part, strata, prune_hard, seed + c) if part else []
        chosen.extend(int(group[i]) for i in picked)
        report.append(ClusterChoice(cluster=c, size=int(group.size), budget=part, scorer=name, histogram_entropy=ents))
    return Selection(indices=sorted(chosen), deduplicated=removed, clusters=report)


class SelectInstructionsInput(BaseModel):
    """Arguments of ``select_instructions`` (array files: .npy, .npz, FILE.npz:KEY or .csv)."""

    features: str = Field(description="the model's penultimate features of each example (n × d)")
    outputs: str = Field(description="the model's output distribution per example (n × classes/vocab)")
    outputs_kind: Literal["probs", "logits"] = Field(default="logits", description="outputs are logits or probs")
    labels: str = Field(description="each example's target class / token (n)")
    losses: str | None = Field(default=None, description="optional mean token loss per example (for perplexity)")
    budget: int = Field(gt=0, description="number of examples to select (met exactly)")
    clusters: int = Field(default=8, gt=0, description="pseudo-skill clusters")
    dim: int = Field(default=64, gt=0, description="random-projection dimension of the gradient embeddings")
    strata: int = Field(default=10, gt=0, description="CCS score strata per cluster")
    prune_hard: float = Field(default=0.0, ge=0, lt=1, description="CCS: fraction of hardest examples dropped first")
    dedup_eps: float | None = Field(default=None, ge=0, le=2, description="SemDeDup the pool first at this ε")
    allocation: Literal["proportional", "uniform"] = "proportional"
    out: str | None = Field(default=None, description="optional .npz for the selected indices (key 'indices')")
    seed: int = 0


class SelectInstructionsOutput(BaseModel):
    """Result of ``select_instructions``."""

    selected: int
    indices: list[int]
    deduplicated: list[int]
    clusters: list[ClusterChoice]
    out: str | None


@tool(
    name="select_instructions",
    family="data",
    paper=_PAPER,
    tags=("data-selection", "continual", "instruction-tuning", "lifelong", "coverage", "needs:model-outputs"),
)
def select_instructions(args: SelectInstructionsInput) -> SelectInstructionsOutput:
    """Adapt-∞: select exactly ``budget`` training examples that cover the model's pseudo-skills.

    Gradient-embedding k-means clusters, a per-cluster score (EL2N / entropy / perplexity, the one with the most
    spread-out histogram) and coverage-centric stratified sampling; optional SemDeDup of the pool first.
    """
    features = check_matrix(load_array(args.features, name="features"), name="features")
    outputs = check_matrix(load_array(args.outputs, name="outputs"), name="outputs", rows=features.shape[0])
    probs = to_probabilities(outputs, kind=args.outputs_kind)
    labels = load_array(args.labels, name="labels")
    losses = load_array(args.losses, name="losses") if args.losses else None
    result = adapt_inf_select(
        features,
        probs,
        labels,
        args.budget,
        losses=losses,
        clusters=args.clusters,
        dim=args.dim,
        strata=args.strata,
        prune_hard=args.prune_hard,
        dedup_eps=args.dedup_eps,
        allocation=args.allocation,
        seed=args.seed,
    )
    out = str(save_arrays(args.out, indices=result.indices)) if args.out else None
    return SelectInstructionsOutput(
        selected=len(result.indices),
        indices=result.indices,
        deduplicated=result.deduplicated,
        clusters=result.clusters,
        out=out,
    )
