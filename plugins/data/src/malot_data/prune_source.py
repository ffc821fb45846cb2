"""DP4TL source-data pruning (Zhang et al., "Selectivity Drives Productivity: Efficient Dataset Pruning for Enhanced
Transfer Learning", NeurIPS 2023).

Pre-training on the whole source set wastes compute on classes the target never needs. DP4TL keeps only the source
data that *maps* to the target:

* **Label mapping (DP4TL-LM, §4)**: run the pre-trained source model on the target inputs; source class ``k`` gets
  ``h_k = #{target samples whose predicted source class is k}``; keep source classes in decreasing ``h_k``.
* **Feature mapping (DP4TL-FM, §4)**: for a source set without usable labels, cluster source features with k-means
  into pseudo-classes, assign every target feature to its nearest centroid, and keep the most-hit pseudo-classes.

The kept fraction of the source set is ``keep`` exactly: whole groups are kept in decreasing hit count and the last
group is cut at random to fill the budget (the paper prunes whole classes; the cut only matters when ``keep·N``
falls inside a class). The hit counting and ordering are the paper's; k-means is scikit-learn's ``KMeans``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_data.core.arrays import check_labels, check_matrix, load_array, save_arrays

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = [
    "PruneResult",
    "PruneSourceInput",
    "PruneSourceOutput",
    "feature_mapping_groups",
    "label_mapping_hits",
    "prune_by_hits",
    "prune_source",
]

_PAPER = (
    "Selectivity Drives Productivity: Efficient Dataset Pruning for Enhanced Transfer Learning"
    " (Zhang et al., NeurIPS 2023)"
)


def label_mapping_hits(target_logits: Any, num_groups: int) -> NDArray[np.int64]:
    """DP4TL-LM: for each source class, how many target samples the source model assigns to it (argmax)."""
    import numpy as np

    logits = check_matrix(target_logits, name="target_logits")
    if logits.shape[1] != num_groups:
        raise ToolError(
            f"target_logits has {logits.shape[1]} columns but the source set has {num_groups} classes",
            hint="pass the source model's logits over its own classes, one column per source class",
        )
    return np.bincount(logits.argmax(axis=1), minlength=num_groups).astype(np.int64)


def feature_mapping_groups(
    source_features: Any, target_features: Any, clusters: int, seed: int = 0
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """DP4TL-FM: k-means pseudo-classes of the source features and their hit counts from the target features.

    Returns ``(group of each source sample, hits per group)``.
    """
    import numpy as np
    from sklearn.cluster import KMeans

    src = check_matrix(source_features, name="source_features")
    tgt = check_matrix(target_features, name="target_features")
    if src.shape[1] != tgt.shape[1]:
        raise ToolError(
            f"source features have {src.shape[1]} dimensions, target features {tgt.shape[1]}",
            hint="extract both with the same source model",
        )
    if not 1 <= clusters <= src.shape[0]:
        raise ToolError(f"clusters={clusters} must be between 1 and the {src.shape[0]} source samples")
    km = KMeans(n_clusters=clusters, n_init=4, random_state=seed).fit(src)
    groups = km.labels_.astype(np.int64)
    hits = np.bincount(km.predict(tgt), minlength=clusters).astype(np.int64)
    return groups, hits


class PruneResult(BaseModel):
    """Kept source indices (sorted), the groups in the order they were kept, and each group's hit count."""

    indices: list[int]
    kept_groups: list[int]
    partial_group: int | None
    hits: list[int]


def prune_by_hits(groups: Any, hits: Any, keep: float, seed: int = 0) -> PruneResult:
    """Keep exactly ``round(keep·N)`` source samples: whole groups by decreasing hits, the last one cut at random."""
    import numpy as np

    group_of = np.asarray(groups, dtype=np.int64)
    counts = np.asarray(hits, dtype=np.int64)
    if not 0.0 < keep <= 1.0:
        raise ToolError(f"keep={keep} must be in (0, 1]", hint="keep is the fraction of the source set to keep")
    budget = round(keep * group_of.shape[0])
    if budget == 0:
        raise ToolError(f"keep={keep} keeps no sample of {group_of.shape[0]}", hint="raise keep")
    order = sorted(range(counts.shape[0]), key=lambda g: (-int(counts[g]), g))
    rng = np.random.default_rng(seed)
    chosen: list[NDArray[np.int64]] = []
    kept: list[int] = []
    partial: int | None = None
    left = budget
    for g in order:
        members = np.flatnonzero(group_of == g)
        if members.size == 0 or left == 0:
            continue
        if members.size <= left:
            chosen.append(members)
            kept.append(int(g))
            left -= members.size
        else:
            chosen.append(np.sort(rng.choice(members, size=left, replace=False)))
            partial = int(g)
            left = 0
    indices = np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)
    return PruneResult(
        indices=[int(i) for i in indices], kept_groups=kept, partial_group=partial, hits=[int(h) for h in counts]
    )


class PruneSourceInput(BaseModel):
    """Arguments of the ``prune_source`` tool (array files: .npy, .npz, FILE.npz:KEY or .csv)."""

    mode: Literal["label", "feature"] = Field(
        default="label", description="label: DP4TL-LM (needs source_labels, target_logits); feature: DP4TL-FM"
    )
    keep: float = Field(gt=0, le=1, description="fraction of the source set to keep (met exactly)")
    source_labels: str | None = Field(default=None, description="label mode: source class of each source sample")
    target_logits: str | None = Field(
        default=None, description="label mode: the source model's logits on the target inputs (n_target × classes)"
    )
    source_features: str | None = Field(default=None, description="feature mode: source features (n_source × d)")
    target_features: str | None = Field(default=None, description="feature mode: target features (n_target × d)")
    clusters: int = Field(default=10, gt=0, description="feature mode: number of k-means pseudo-classes")
    out: str | None = Field(default=None, description="optional .npz to write the kept indices to (key 'indices')")
    seed: int = 0


class PruneSourceOutput(BaseModel):
    """Result of ``prune_source``."""

    mode: str
    source_size: int
    kept: int
    kept_fraction: float
    kept_groups: list[int]
    partial_group: int | None
    hits: list[int]
    indices: list[int]
    out: str | None


def _need(value: str | None, field: str, mode: str) -> str:
    if value is None:
        raise ToolError(f"mode {mode!r} needs {field}", hint=f"pass {field} as an array file")
    return value


@tool(
    name="prune_source",
    family="data",
    paper=_PAPER,
    tags=("data-pruning", "source-selection", "transfer", "pre-training", "needs:source-model-outputs"),
)
def prune_source(args: PruneSourceInput) -> PruneSourceOutput:
    """DP4TL: prune a source (pre-training) set to the part that maps to a target task, keeping a fraction exactly.

    Label mode ranks source classes by how often the source model predicts them on the target inputs; feature mode
    clusters source features with k-means and ranks clusters by how many target features fall nearest to them.
    """
    if args.mode == "label":
        labels = check_labels(
            load_array(_need(args.source_labels, "source_labels", "label"), name="source_labels"), name="source_labels"
        )
        logits = load_array(_need(args.target_logits, "target_logits", "label"), name="target_logits")
        groups: Any = labels
        hits: Any = label_mapping_hits(logits, int(labels.max()) + 1)
    else:
        src = load_array(_need(args.source_features, "source_features", "feature"), name="source_features")
        tgt = load_array(_need(args.target_features, "target_features", "feature"), name="target_features")
        groups, hits = feature_mapping_groups(src, tgt, args.clusters, args.seed)
    result = prune_by_hits(groups, hits, args.keep, args.seed)
    out = str(save_arrays(args.out, indices=result.indices)) if args.out else None
    n = len(groups)
    return PruneSourceOutput(
        mode=args.mode,
        source_size=n,
        kept=len(result.indices),
        kept_fraction=len(result.indices) / n,
        kept_groups=result.kept_groups,
        partial_group=result.partial_group,
        hits=result.hits,
        indices=result.indices,
        out=out,
    )
