"""TMV-HLP: transductive multi-view embedding + heterogeneous hypergraph label propagation (Fu et al., TPAMI 2015).

Zero-shot setting: unlabelled target instances are described in several *views* — e.g. low-level features, attribute
predictions and word-vector predictions — and every target class has a *prototype* in each semantic view (its
attribute vector, its word vector). Predictions from models trained on other classes suffer *projection domain
shift*, so the paper:

1. **Transductive multi-view embedding**: multi-view CCA over the target instances' views (the generalised
   eigenproblem ``C w = λ D w`` with ``C`` the covariance of all views stacked and ``D`` its block diagonal, ridge
   regularised), each view projected as ``Γ_v = (X_v − μ_v) W_v diag(λ)^p`` and row-normalised; prototypes are
   projected with their view's ``W_v``.
2. **Heterogeneous hypergraph**: nodes are instances and prototypes; for each view ``v`` and node ``u`` a hyperedge
   ``{u} ∪ kNN_v(u)``; its weight is measured in the *other* views (the heterogeneous part),
   ``w(e) = mean_{j≠v} mean_{a∈e} exp(−‖Γ_j(u) − Γ_j(a)‖²/σ²)``.
3. **Label propagation**: the hypergraph random walk ``P = D_v⁻¹ H W D_e⁻¹ Hᵀ`` (row-stochastic by construction) and
   ``F = (1 − α)(I − αP)⁻¹ Y`` with ``Y`` the one-hot classes of the prototypes; each instance takes ``argmax F``.

The paper's part: the embedding recipe, the heterogeneous hyperedges and the propagation; the libraries': SciPy's
generalised symmetric eigensolver and scikit-learn's kNN search.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_fewshot.core.arrays import as_matrix, check_rows
from malot_fewshot.core.graph import knn_indices, squared_distances

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = [
    "MultiViewCca",
    "TmvHlpInput",
    "TmvHlpOutput",
    "hypergraph_walk",
    "multiview_cca",
    "propagate",
    "tmv_hlp",
    "tmv_hlp_predict",
]

_PAPER = "Transductive Multi-view Zero-Shot Learning (Fu, Hospedales, Xiang, Gong; TPAMI 2015)"


@dataclass
class MultiViewCca:
    """Per-view means and projections of a multi-view CCA, and the canonical values of the kept dimensions."""

    means: list[NDArray[np.float64]]
    projections: list[NDArray[np.float64]]
    values: NDArray[np.float64]

    def embed(self, view: int, x: NDArray[np.float64], power: float = 4.0) -> NDArray[np.float64]:
        """``(x − μ_v) W_v diag(λ)^p``, rows L2-normalised."""
        import numpy as np

        z = (x - self.means[view]) @ self.projections[view] * np.maximum(self.values, 0.0) ** power
        out: NDArray[np.float64] = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
        return out


def multiview_cca(views: list[NDArray[np.float64]], dim: int, reg: float = 1e-3) -> MultiViewCca:
    """Multi-view CCA (sum of correlations): top ``dim`` solutions of ``C w = λ D w``."""
    import numpy as np
    from scipy.linalg import eigh

    means = [v.mean(0) for v in views]
    centred = [v - m for v, m in zip(views, means, strict=True)]
    stacked = np.hstack(centred)
    n = len(stacked)
    c = stacked.T @ stacked / n
    d = np.zeros_like(c)
    start = 0
    for v in centred:
        end = start + v.shape[1]
        block = c[start:end, start:end]
        d[start:end, start:end] = block + reg * (np.trace(block) / v.shape[1] + 1e-12) * np.eye(v.shape[1])
        start = end
    values, vectors = eigh(c, d)
    top = np.argsort(values)[::-1][:dim]
    projections, start = [], 0
    for v in centred:
        projections.append(vectors[start : start + v.shape[1], top])
        start += v.shape[1]
    return MultiViewCca(means=means, projections=projections, values=np.asarray(values[top], dtype=np.float64))


def hypergraph_walk(embeddings: list[NDArray[np.float64]], k: int, sigma: float | None = None) -> NDArray[np.float64]:
    """Row-stochastic random walk ``D_v⁻¹ H W D_e⁻¹ Hᵀ`` on the heterogeneous kNN hypergraph of the node embeddings.

    ``embeddings[v]`` holds every node's coordinates in view ``v`` (same rows in every view).
    """
    import numpy as np

    n = len(embeddings[0])
    dists = [squared_distances(e, e) for e in embeddings]
    scale = sigma**2 if sigma is not None else float(np.median(np.concatenate([d.ravel() for d in dists]))) or 1.0
    columns: list[NDArray[np.int64]] = []
    weights: list[float] = []
    for v, emb in enumerate(embeddings):
        others = [j for j in range(len(embeddings)) if j != v] or [v]
        neighbours = knn_indices(emb, k)
        for u in range(n):
            members = np.concatenate([[u], neighbours[u]]).astype(np.int64)
            columns.append(members)
            weights.append(float(np.mean([np.exp(-dists[j][u, members] / scale).mean() for j in others])))
    h = np.zeros((n, len(columns)))
    for e, members in enumerate(columns):
        h[members, e] = 1.0
    w = np.asarray(weights)
    node_degree = h @ w
    edge_degree = h.sum(0)
    walk: NDArray[np.float64] = (h * (w / edge_degree)) @ h.T / node_degree[:, None]
    return walk


def propagate(walk: NDArray[np.float64], seeds: NDArray[np.float64], alpha: float) -> NDArray[np.float64]:
    """Label propagation ``F = (1 − α)(I − αP)⁻¹ Y``."""
    import numpy as np

    solved = np.linalg.solve(np.eye(len(walk)) - alpha * walk, seeds)
    out: NDArray[np.float64] = np.asarray((1 - alpha) * solved, dtype=np.float64)
    return out


@dataclass
class TmvHlpResult:
    """Labels and propagated scores of the instances, the walk matrix, and the instances' embedded views."""

    labels: NDArray[np.int64]
    scores: NDArray[np.float64]
    walk: NDArray[np.float64]
    embedded: list[NDArray[np.float64]]


def tmv_hlp_predict(
    views: list[NDArray[np.float64]],
    prototypes: list[NDArray[np.float64] | None],
    *,
    dim: int = 10,
    k: int = 5,
    alpha: float = 0.9,
    power: float = 4.0,
    reg: float = 1e-3,
) -> TmvHlpResult:
    """The whole method: embed the views, build the hypergraph over instances + prototypes, propagate."""
    import numpy as np

    n = len(views[0])
    cca = multiview_cca(views, min(dim, *(v.shape[1] for v in views)), reg)
    inst = [cca.embed(v, x, power) for v, x in enumerate(views)]
    proto_blocks = [(v, cca.embed(v, p, power)) for v, p in enumerate(prototypes) if p is not None]
    n_classes = len(proto_blocks[0][1])
    nodes = [np.vstack([inst[v], *[block for _, block in proto_blocks]]) for v in range(len(views))]
    walk = hypergraph_walk(nodes, k)
    seeds = np.zeros((len(walk), n_classes))
    for b in range(len(proto_blocks)):
        seeds[n + b * n_classes + np.arange(n_classes), np.arange(n_classes)] = 1.0
    scores = propagate(walk, seeds, alpha)[:n]
    return TmvHlpResult(labels=scores.argmax(1), scores=scores, walk=walk, embedded=inst)


class TmvHlpInput(BaseModel):
    """Arguments of the ``tmv_hlp`` tool."""

    views: list[list[list[float]]] = Field(
        min_length=2, description="the target instances in each view: one matrix per view, same rows in every view"
    )
    prototypes: list[list[list[float]] | None] = Field(
        description="per view: class prototypes (one row per unseen class) for semantic views, null for others"
    )
    dim: int = Field(default=10, gt=0, description="embedding dimensions kept from multi-view CCA")
    k: int = Field(default=5, gt=0, description="neighbours per hyperedge")
    alpha: float = Field(default=0.9, gt=0, lt=1, description="propagation strength α")
    power: float = Field(default=4.0, ge=0, description="exponent p on the canonical values weighting dimensions")


class TmvHlpOutput(BaseModel):
    """Result of the ``tmv_hlp`` tool."""

    labels: list[int]
    scores: list[list[float]]


@tool(
    name="tmv_hlp",
    family="fewshot",
    paper=_PAPER,
    tags=("zero-shot", "transductive", "multi-view", "hypergraph", "label propagation", "needs:views+prototypes"),
)
def tmv_hlp(args: TmvHlpInput) -> TmvHlpOutput:
    """Zero-shot labels for unlabelled target instances from several views and per-view class prototypes.

    Multi-view CCA embedding, heterogeneous kNN hypergraph over instances and prototypes, label propagation.
    """
    views = [as_matrix(v, f"views[{i}]", min_rows=2) for i, v in enumerate(args.views)]
    check_rows([(f"views[{i}]", v) for i, v in enumerate(views)])
    if len(args.prototypes) != len(views):
        raise ToolError(f"got {len(args.prototypes)} prototype entries for {len(views)} views", hint="null for none")
    protos = [
        as_matrix(p, f"prototypes[{i}]", cols=views[i].shape[1]) if p is not None else None
        for i, p in enumerate(args.prototypes)
    ]
    given = [p for p in protos if p is not None]
    if not given:
        raise ToolError("no view has class prototypes", hint="give the class attribute or word vectors of one view")
    if len({len(p) for p in given}) > 1 or len(given[0]) < 2:
        raise ToolError("every prototype matrix needs the same number (≥ 2) of classes, in the same order")
    total = len(views[0]) + sum(len(p) for p in given)
    if args.k >= total:
        raise ToolError(f"k={args.k} needs more than {args.k} nodes", hint="lower k")
    result = tmv_hlp_predict(views, protos, dim=args.dim, k=args.k, alpha=args.alpha, power=args.power)
    return TmvHlpOutput(labels=result.labels.tolist(), scores=result.scores.round(6).tolist())
