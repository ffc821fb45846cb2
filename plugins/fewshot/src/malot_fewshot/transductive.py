"""Transductive few-shot inference as Laplacian-regularised clustering (LaplacianShot; Ziko et al., ICML 2020).

The query labels ``Y`` (rows on the simplex) and the class prototypes ``M`` minimise

    E(Y, M) = Σ_q Σ_c y_qc ‖x_q − m_c‖²  −  (λ/2) Σ_pq w_pq y_pᵀ y_q  +  T Σ_q Σ_c y_qc log y_qc
              + α Σ_s ‖x_s − m_{c(s)}‖²                                             (support anchors)

The Laplacian term rewards neighbouring queries (affinity ``w``) for sharing a label. Since ``−(λ/2) YᵀWY`` is concave
for a positive semi-definite ``W``, its linearisation at the current ``Yᵗ`` is an upper bound (the paper's bound
optimiser, its Eq. 7-9) and the bound's minimiser is the parallel update ``y_q ∝ exp(−(a_q − λ Σ_p w_qp y_pᵗ)/T)``
(``T = 0``: the one-hot argmin). Prototypes are then re-estimated as weighted means (exact minimiser of the first and
last terms), so ``E`` never increases for PSD ``W`` (the dense Gaussian affinity; a kNN affinity is the paper's
practical choice, without the guarantee). With ``λ = 0``, ``T = 0`` and ``α = 0`` the procedure is exactly Lloyd's
k-means on the queries started at the support means. The paper's part: the objective and the bound updates; the
library's (scikit-learn): the exact kNN search for the affinity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_fewshot.core.arrays import as_labels, as_matrix
from malot_fewshot.core.graph import gaussian_affinity, knn_affinity, squared_distances

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["TransductiveInput", "TransductiveOutput", "TransductiveResult", "laplacian_shot", "transductive_fewshot"]

_PAPER = "Laplacian Regularized Few-Shot Learning (Ziko, Dolz, Granger, Ben Ayed; ICML 2020)"


@dataclass
class TransductiveResult:
    """Soft labels of the queries, final prototypes, and the objective after every outer iteration."""

    assignments: NDArray[np.float64]
    prototypes: NDArray[np.float64]
    energies: list[float]

    @property
    def labels(self) -> NDArray[np.int64]:
        """Hard query labels (argmax of the soft labels)."""
        out: NDArray[np.int64] = self.assignments.argmax(1)
        return out


def _assign(unary: NDArray[np.float64], temperature: float) -> NDArray[np.float64]:
    import numpy as np

    if temperature == 0.0:
        out = np.zeros_like(unary)
        out[np.arange(len(unary)), unary.argmin(1)] = 1.0
        return out
    z = -unary / temperature
    z -= z.max(1, keepdims=True)
    p = np.exp(z)
    result: NDArray[np.float64] = p / p.sum(1, keepdims=True)
    return result


def _energy(
    y: NDArray[np.float64],
    dist: NDArray[np.float64],
    w: NDArray[np.float64],
    lam: float,
    temperature: float,
    anchor: float,
) -> float:
    import numpy as np

    value = float((y * dist).sum() - 0.5 * lam * np.einsum("pc,pq,qc->", y, w, y)) + anchor
    if temperature > 0:
        value += temperature * float((y * np.log(np.clip(y, 1e-300, None))).sum())
    return value


def laplacian_shot(
    support: NDArray[np.float64],
    support_labels: NDArray[np.int64],
    query: NDArray[np.float64],
    *,
    lam: float = 1.0,
    temperature: float = 0.0,
    affinity: Literal["knn", "gaussian"] = "knn",
    knn: int = 3,
    sigma: float | None = None,
    support_weight: float = 1.0,
    update_prototypes: bool = True,
    max_iter: int = 50,
    bound_iter: int = 20,
    tol: float = 1e-9,
) -> TransductiveResult:
    """Run the bound optimisation of the module docstring; returns soft labels, prototypes and the energy trace."""
    import numpy as np

    n_classes = int(support_labels.max()) + 1
    if sorted(set(support_labels.tolist())) != list(range(n_classes)):
        raise ToolError("every class 0..C-1 needs at least one support sample", hint="relabel classes as 0..C-1")
    counts = np.bincount(support_labels, minlength=n_classes).astype(np.float64)
    sums = np.zeros((n_classes, support.shape[1]))
    np.add.at(sums, support_labels, support)
    protos = sums / counts[:, None]
    if lam == 0.0:
        w = np.zeros((len(query), len(query)))
    elif affinity == "knn":
        w = knn_affinity(query, knn, sigma=sigma)
    else:
        w = gaussian_affinity(query, sigma if sigma is not None else float(np.sqrt(query.var(0).sum())))

    def anchor_term(m: NDArray[np.float64]) -> float:
        return support_weight * float(((support - m[support_labels]) ** 2).sum())

    dist = squared_distances(query, protos)
    y = _assign(dist, temperature)
    energies = [_energy(y, dist, w, lam, temperature, anchor_term(protos))]
    for _ in range(max_iter):
        for _ in range(bound_iter):  # bound updates: linearise the Laplacian term at Yᵗ, minimise the bound
            new_y = _assign(dist - lam * (w @ y), temperature)
            if np.abs(new_y - y).max() <= tol:
                y = new_y
                break
            y = new_y
        if update_prototypes:
            mass = y.sum(0) + support_weight * counts
            weighted = y.T @ query + support_weight * sums
            keep = mass > 0  # an empty class keeps its prototype (it does not enter the objective)
            protos = np.where(keep[:, None], weighted / np.where(keep, mass, 1.0)[:, None], protos)
            dist = squared_distances(query, protos)
        energies.append(_energy(y, dist, w, lam, temperature, anchor_term(protos)))
        if abs(energies[-2] - energies[-1]) <= tol * max(1.0, abs(energies[-1])):
            break
    return TransductiveResult(assignments=y, prototypes=protos, energies=energies)


class TransductiveInput(BaseModel):
    """Arguments of the ``transductive_fewshot`` tool."""

    support: list[list[float]] = Field(description="labelled support features, one row per sample")
    support_labels: list[int] = Field(description="class of every support row (0..C-1, every class present)")
    query: list[list[float]] = Field(description="unlabelled query features (classified jointly)")
    lam: float = Field(default=1.0, ge=0, description="weight λ of the Laplacian term (0: plain clustering)")
    temperature: float = Field(default=0.0, ge=0, description="entropy weight T (0: hard assignments)")
    affinity: Literal["knn", "gaussian"] = Field(default="knn", description="knn (paper) or dense PSD Gaussian")
    knn: int = Field(default=3, gt=0, description="neighbours per query in the kNN affinity")
    support_weight: float = Field(default=1.0, ge=0, description="α: how strongly support samples anchor prototypes")
    update_prototypes: bool = True
    max_iter: int = Field(default=50, gt=0)


class TransductiveOutput(BaseModel):
    """Result of the ``transductive_fewshot`` tool."""

    labels: list[int]
    probabilities: list[list[float]]
    energies: list[float]
    iterations: int


@tool(
    name="transductive_fewshot",
    family="fewshot",
    paper=_PAPER,
    tags=("few-shot", "transductive", "clustering", "laplacian", "prototypes", "needs:support+query features"),
)
def transductive_fewshot(args: TransductiveInput) -> TransductiveOutput:
    """Classify a few-shot episode's queries jointly: Laplacian-regularised clustering with bound updates.

    Starts from the support prototypes and alternates the bound update of the labels with prototype re-estimation;
    the objective never increases (dense Gaussian affinity). ``lam=0, temperature=0, support_weight=0`` is k-means.
    """
    support = as_matrix(args.support, "support")
    query = as_matrix(args.query, "query", min_rows=2, cols=support.shape[1])
    labels = as_labels(args.support_labels, "support_labels", length=len(support))
    if args.affinity == "knn" and args.lam > 0 and args.knn >= len(query):
        raise ToolError(f"knn={args.knn} needs more than {args.knn} queries", hint="lower knn")
    result = laplacian_shot(
        support,
        labels,
        query,
        lam=args.lam,
        temperature=args.temperature,
        affinity=args.affinity,
        knn=args.knn,
        support_weight=args.support_weight,
        update_prototypes=args.update_prototypes,
        max_iter=args.max_iter,
    )
    return TransductiveOutput(
        labels=result.labels.tolist(),
        probabilities=result.assignments.round(6).tolist(),
        energies=result.energies,
        iterations=len(result.energies) - 1,
    )
