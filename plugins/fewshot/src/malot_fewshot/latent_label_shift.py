"""Unsupervised learning under latent label shift: Discriminate → Cluster → Factorise (DDFA; Roberts et al. 2022).

Data come from domains ``d`` that share the class-conditionals ``p(x|y)`` but differ in the label marginals
``p(y|d)``; no label is observed. Then ``p(d|x)`` depends on ``x`` only through ``p(y|x)``, so

1. **Discriminate**: train a domain classifier ``p̂(d|x)`` (scikit-learn logistic regression or MLP);
2. **Cluster**: k-means on the vectors ``p̂(d|x)`` (``m ≥ K`` clusters) — points with the same label posterior fall
   together even where the classes are not clusters in ``x``;
3. **Factorise**: the cluster-by-domain matrix ``Q[c, d] = P(c | d)`` factors as ``Q = A·B`` with ``A[c, y] = p(c|y)``
   and ``B[y, d] = p(y|d)`` (both column-stochastic); a rank-``K`` non-negative factorisation recovers them up to a
   permutation of the classes under the paper's anchor condition (each class has a cluster it alone reaches). Plain
   NMF is not unique, so the tool uses the separable (anchor) NMF that this condition makes exact: successive
   projections find the anchor clusters, SciPy's NNLS fits ``A``.

The domain-specific classifier is ``p_d(y|x) ∝ A[c(x), y]·B[y, d]``. Paper: "Unsupervised Learning under Latent Label
Shift" (Roberts, Mani, Garg, Lipton; NeurIPS 2022). The paper's part: the DDFA pipeline and the normalisation of the
factors; the library's: the classifier, k-means and NMF (scikit-learn).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_fewshot.core.arrays import as_labels, as_matrix

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["DdfaResult", "LatentLabelShiftInput", "LatentLabelShiftOutput", "ddfa", "latent_label_shift"]

_PAPER = "Unsupervised Learning under Latent Label Shift (Roberts, Mani, Garg, Lipton; NeurIPS 2022)"


@dataclass
class DdfaResult:
    """``p(y|d)`` (K × D), ``p(c|y)`` (m × K), cluster of every sample, and the per-sample class posteriors."""

    label_given_domain: NDArray[np.float64]
    cluster_given_label: NDArray[np.float64]
    clusters: NDArray[np.int64]
    posteriors: NDArray[np.float64]

    @property
    def labels(self) -> NDArray[np.int64]:
        """Most probable (latent, permuted) class of every sample in its own domain."""
        out: NDArray[np.int64] = self.posteriors.argmax(1)
        return out


def anchor_rows(q: NDArray[np.float64], k: int) -> NDArray[np.int64]:
    """Successive projection algorithm: ``k`` rows of ``q`` (rows scaled to sum 1) spanning its convex hull."""
    import numpy as np

    r = q / np.maximum(q.sum(1, keepdims=True), 1e-300)
    chosen: list[int] = []
    for _ in range(k):
        j = int(np.argmax((r * r).sum(1)))
        chosen.append(j)
        u = r[j] / max(float(np.linalg.norm(r[j])), 1e-300)
        r = r - np.outer(r @ u, u)
    return np.asarray(chosen, dtype=np.int64)


def factorise(q: NDArray[np.float64], n_classes: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Separable NMF of a column-stochastic ``Q`` (m × D) into column-stochastic ``A`` (m × K) and ``B`` (K × D).

    Plain NMF is not unique (``Q = I·Q`` is always a factorisation when ``m = K``); under the paper's anchor condition
    the anchor clusters' rows are multiples of ``B``'s rows, so: find them (SPA), fix their scales so that every
    column of ``B`` sums to 1 (least squares), and fit ``A ≥ 0`` row by row (NNLS, SciPy).
    """
    import numpy as np
    from scipy.optimize import nnls

    anchors = anchor_rows(q, n_classes)
    rows = q[anchors]  # (K, D): row y is B[y] / A[anchor_y, y]
    scale, *_ = np.linalg.lstsq(rows.T, np.ones(q.shape[1]), rcond=None)
    b = np.maximum(rows * scale[:, None], 0.0)
    b = b / np.maximum(b.sum(0, keepdims=True), 1e-300)
    a = np.stack([nnls(b.T, q[c])[0] for c in range(len(q))])
    a = a / np.maximum(a.sum(0, keepdims=True), 1e-300)
    return np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)


def ddfa(
    x: NDArray[np.float64],
    domains: NDArray[np.int64],
    n_classes: int,
    *,
    n_clusters: int | None = None,
    discriminator: Literal["logistic", "mlp"] = "logistic",
    seed: int = 0,
) -> DdfaResult:
    """Run Discriminate → Cluster → Factorise on unlabelled multi-domain data."""
    import numpy as np
    from sklearn.cluster import KMeans
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    n_domains = int(domains.max()) + 1
    m = n_clusters or n_classes
    if n_classes > n_domains:
        raise ToolError(
            f"{n_classes} latent classes cannot be identified from {n_domains} domains",
            hint="latent label shift needs at least as many domains as classes",
        )
    head = (
        LogisticRegression(max_iter=2000)
        if discriminator == "logistic"
        else MLPClassifier(hidden_layer_sizes=(64,), max_iter=500, random_state=seed)
    )
    clf = make_pipeline(StandardScaler(), head).fit(x, domains)
    p_dx = clf.predict_proba(x)
    clusters = KMeans(n_clusters=m, n_init=10, random_state=seed).fit_predict(p_dx).astype(np.int64)
    counts = np.zeros((m, n_domains))
    np.add.at(counts, (clusters, domains), 1.0)
    q = counts / counts.sum(0, keepdims=True)
    a, b = factorise(q, n_classes)
    post = a[clusters] * b[:, domains].T
    post = post / np.maximum(post.sum(1, keepdims=True), 1e-300)
    return DdfaResult(label_given_domain=b, cluster_given_label=a, clusters=clusters, posteriors=post)


class LatentLabelShiftInput(BaseModel):
    """Arguments of the ``latent_label_shift`` tool."""

    x: list[list[float]] = Field(description="unlabelled features from all domains, one row per sample")
    domains: list[int] = Field(description="domain id of every sample (0..D-1)")
    n_classes: int = Field(gt=1, description="number K of latent classes (at most the number of domains)")
    n_clusters: int | None = Field(default=None, gt=1, description="k-means clusters m ≥ K (default K)")
    discriminator: Literal["logistic", "mlp"] = "logistic"
    seed: int = 0


class LatentLabelShiftOutput(BaseModel):
    """Result of the ``latent_label_shift`` tool (classes are latent: numbered up to a permutation)."""

    label_given_domain: list[list[float]] = Field(description="p(y|d): one row per latent class, one column per domain")
    labels: list[int]
    posteriors: list[list[float]]


@tool(
    name="latent_label_shift",
    family="fewshot",
    paper=_PAPER,
    tags=("unsupervised", "label shift", "domains", "unlabelled target", "needs:features+domain ids"),
)
def latent_label_shift(args: LatentLabelShiftInput) -> LatentLabelShiftOutput:
    """Recover latent classes and per-domain label marginals p(y|d) from unlabelled multi-domain data (DDFA).

    Domain discriminator → k-means on p(d|x) → NMF of the cluster × domain matrix; classes up to a permutation.
    """
    import numpy as np

    x = as_matrix(args.x, "x", min_rows=2)
    domains = as_labels(args.domains, "domains", length=len(x))
    if len(np.unique(domains)) < 2 or (np.bincount(domains) == 0).any():
        raise ToolError("domain ids must be 0..D-1 with at least two non-empty domains", hint="renumber the domains")
    m = args.n_clusters or args.n_classes
    if m < args.n_classes or m > len(x):
        raise ToolError(f"n_clusters={m} must be between n_classes={args.n_classes} and the number of samples")
    result = ddfa(
        x, domains, args.n_classes, n_clusters=args.n_clusters, discriminator=args.discriminator, seed=args.seed
    )
    return LatentLabelShiftOutput(
        label_given_domain=result.label_given_domain.round(6).tolist(),
        labels=result.labels.tolist(),
        posteriors=result.posteriors.round(6).tolist(),
    )
