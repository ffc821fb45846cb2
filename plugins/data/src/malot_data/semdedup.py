"""SemDeDup (Abbas et al., "SemDeDup: Data-efficient learning at web-scale through semantic deduplication", 2023).

Embed every example, cluster the embeddings with k-means, and inside each cluster order the members by decreasing
distance to the centroid (the paper keeps the least prototypical copy). Member ``j`` gets the duplicate score
``M_j = max_{i before j} cos(e_i, e_j)`` (§3, the upper triangle of the cluster's similarity matrix); it is a
*semantic duplicate* when ``M_j > 1 − ε``. Two ways to prune:

* threshold: remove every semantic duplicate at the given ``ε`` (the paper's setting);
* budget: keep exactly ``budget`` examples by removing the highest duplicate scores first, so every exact or near
  duplicate goes before any distinct example (Adapt-∞ uses SemDeDup this way to prune its pool permanently).

Clustering is scikit-learn's ``KMeans``; the ordering and scores are the paper's.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, model_validator

from malot.errors import ToolError
from malot.tools import tool
from malot_data.core.arrays import check_matrix, load_array, save_arrays

__all__ = ["DuplicateScores", "SemDedupInput", "SemDedupOutput", "duplicate_scores", "semdedup", "semdedup_keep"]

MAX_CLUSTER = 20_000
"""Largest cluster compared pairwise (its similarity matrix takes ``MAX_CLUSTER²`` floats, 3.2 GB at 20 000)."""

_PAPER = "SemDeDup: Data-efficient learning at web-scale through semantic deduplication (Abbas et al., 2023)"


class DuplicateScores(BaseModel):
    """Per example: its k-means cluster, duplicate score ``M`` (−1 for a cluster's first member) and nearest earlier
    member of its cluster (``-1`` if none)."""

    cluster: list[int]
    score: list[float]
    duplicate_of: list[int]


def duplicate_scores(embeddings: Any, clusters: int, seed: int = 0) -> DuplicateScores:
    """SemDeDup duplicate scores of every example (see the module docstring)."""
    import numpy as np
    from sklearn.cluster import KMeans

    emb = check_matrix(embeddings, name="embeddings")
    n = emb.shape[0]
    if not 1 <= clusters <= n:
        raise ToolError(f"clusters={clusters} must be between 1 and the {n} examples", hint="lower clusters")
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ToolError("some embeddings are all zeros", hint="drop empty examples before deduplicating")
    unit = emb / norms
    labels = (
        KMeans(n_clusters=clusters, n_init=4, random_state=seed).fit_predict(unit)
        if clusters > 1
        else (np.zeros(n, np.int64))
    )
    biggest = int(np.bincount(labels, minlength=clusters).max())
    if biggest > MAX_CLUSTER:
        raise ToolError(
            f"a cluster of {biggest} examples needs a {biggest}×{biggest} similarity matrix",
            hint=f"raise clusters so no cluster exceeds {MAX_CLUSTER} examples (SemDeDup uses ~N/100 clusters)",
        )
    score = np.full(n, -1.0)
    nearest = np.full(n, -1, np.int64)
    for c in range(clusters):
        members = np.flatnonzero(labels == c)
        if members.size < 2:
            continue
        centroid = unit[members].mean(axis=0)
        centroid /= max(float(np.linalg.norm(centroid)), 1e-12)
        order = members[np.argsort(unit[members] @ centroid, kind="stable")]  # least prototypical first
        sims = unit[order] @ unit[order].T
        sims = np.where(np.tri(order.size, k=-1, dtype=bool), sims, -np.inf)  # only earlier members count
        best = sims.argmax(axis=1)
        score[order[1:]] = sims[np.arange(1, order.size), best[1:]]
        nearest[order[1:]] = order[best[1:]]
    return DuplicateScores(
        cluster=[int(c) for c in labels], score=[float(s) for s in score], duplicate_of=[int(i) for i in nearest]
    )


def semdedup_keep(scores: DuplicateScores, *, eps: float | None = None, budget: int | None = None) -> list[int]:
    """Indices kept (sorted): drop ``M > 1 − eps``, or drop the highest ``M`` until exactly ``budget`` remain."""
    import numpy as np

    m = np.asarray(scores.score)
    n = m.size
    if (eps is None) == (budget is None):
        raise ToolError("give exactly one of eps (threshold) and budget (examples to keep)")
    if eps is not None:
        if not 0.0 <= eps <= 2.0:
            raise ToolError(f"eps={eps} must be in [0, 2]", hint="duplicates are pairs with cosine > 1 - eps")
        return [int(i) for i in np.flatnonzero(~(m > 1.0 - eps))]
    assert budget is not None
    if not 0 <= budget <= n:
        raise ToolError(f"budget={budget} must be between 0 and the {n} examples")
    order = np.lexsort((np.arange(n), -m))  # highest duplicate score first, ties by index
    return sorted(int(i) for i in order[n - budget :])


class SemDedupInput(BaseModel):
    """Arguments of the ``semdedup`` tool: texts (embedded with MiniLM) or precomputed embeddings."""

    texts: str | None = Field(default=None, description=".txt (one text a line) or .jsonl file of examples")
    fields: list[str] = Field(default=["text"], description=".jsonl: the fields joined into each example's text")
    id_field: str | None = Field(default=None, description=".jsonl: field naming each example in the output")
    embeddings: str | None = Field(default=None, description="array file of embeddings instead of texts")
    encoder: str | None = Field(default=None, description="sentence-transformers folder (default: offline MiniLM)")
    clusters: int = Field(default=1, gt=0, description="k-means clusters (1 compares every pair)")
    eps: float | None = Field(default=None, ge=0, le=2, description="remove examples with cosine > 1 - eps")
    budget: int | None = Field(default=None, ge=0, description="keep exactly this many, duplicates removed first")
    out: str | None = Field(default=None, description="optional .npz for the kept indices (key 'indices')")
    seed: int = 0

    @model_validator(mode="after")
    def _one_source_one_rule(self) -> SemDedupInput:
        if (self.texts is None) == (self.embeddings is None):
            raise ValueError("give exactly one of texts and embeddings")
        if (self.eps is None) == (self.budget is None):
            raise ValueError("give exactly one of eps and budget")
        return self


class RemovedExample(BaseModel):
    """One removed example: its index and id, the kept-or-earlier example it duplicates, and their cosine."""

    index: int
    id: str
    duplicate_of: int
    duplicate_of_id: str
    similarity: float


class SemDedupOutput(BaseModel):
    """Result of ``semdedup``."""

    total: int
    kept: int
    removed: list[RemovedExample]
    indices: list[int]
    out: str | None


@tool(
    name="semdedup",
    family="data",
    paper=_PAPER,
    tags=("deduplication", "data-pruning", "demonstration", "proof corpora", "embeddings", "needs:texts"),
)
def semdedup(args: SemDedupInput) -> SemDedupOutput:
    """SemDeDup: remove semantic near-duplicates from a corpus (texts embedded with MiniLM, or given embeddings).

    With ``eps`` every example whose cosine to an earlier member of its k-means cluster exceeds ``1 - eps`` goes;
    with ``budget`` exactly that many stay and the most duplicated go first.
    """
    if args.texts is not None:
        from malot_data.core.text import embed_texts, read_records

        texts, ids = read_records(args.texts, args.fields, args.id_field)
        emb: Any = embed_texts(texts, args.encoder)
    else:
        assert args.embeddings is not None
        emb = load_array(args.embeddings, name="embeddings")
        ids = [str(i) for i in range(len(emb))]
    scores = duplicate_scores(emb, args.clusters, args.seed)
    kept = semdedup_keep(scores, eps=args.eps, budget=args.budget)
    kept_set = set(kept)
    removed = [
        RemovedExample(
            index=i,
            id=ids[i],
            duplicate_of=scores.duplicate_of[i],
            duplicate_of_id=ids[scores.duplicate_of[i]] if scores.duplicate_of[i] >= 0 else "",
            similarity=scores.score[i],
        )
        for i in range(len(ids))
        if i not in kept_set
    ]
    removed.sort(key=lambda r: -r.similarity)
    out = str(save_arrays(args.out, indices=kept)) if args.out else None
    return SemDedupOutput(total=len(ids), kept=len(kept), removed=removed, indices=kept, out=out)
