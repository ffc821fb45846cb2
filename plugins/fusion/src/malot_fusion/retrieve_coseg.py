"""ReCo: Retrieve and Co-segment (Shin, Xie, Albanie, "ReCo: Retrieve and Co-segment for Zero-shot Transfer").

Zero-shot dense labelling in three steps:

1. **Retrieve**: for a concept (a text embedding in a joint space), take the ``k`` items of an unlabelled collection
   whose global embeddings are nearest to it.
2. **Co-segment**: each retrieved item is a set of dense features (image patches, or the tokens of a premise). The
   concept is what the retrieved items *share*: for each feature of item ``i`` compute its best match in every other
   retrieved item and average (its co-occurrence score); keep each item's highest-scoring feature(s) and average them
   into the concept's **reference** embedding. Features of things that appear in only some items score low.
3. **Label**: a new item's features are labelled with the concept whose reference is most similar (cosine).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["build_references", "co_occurrence_scores", "co_segment_reference", "label_features", "retrieve"]


def _unit(x: torch.Tensor) -> torch.Tensor:
    out: torch.Tensor = x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return out


def retrieve(concept: torch.Tensor, item_embeddings: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` items whose global embeddings ``(n, d)`` are most cosine-similar to ``concept``."""
    sims = _unit(item_embeddings.double()) @ _unit(concept.double())
    return sims.topk(min(k, item_embeddings.shape[0])).indices


def co_occurrence_scores(items: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """For each item ``(n_i, d)``, each feature's mean over the other items of its best cosine match there."""
    if len(items) < 2:
        raise ValueError("co-segmentation needs at least two retrieved items")
    units = [_unit(item.double()) for item in items]
    scores: list[torch.Tensor] = []
    for i, a in enumerate(units):
        best = [(a @ b.T).max(dim=1).values for j, b in enumerate(units) if j != i]
        scores.append(torch.stack(best).mean(dim=0))
    return scores


def co_segment_reference(items: Sequence[torch.Tensor], *, per_item: int = 1) -> torch.Tensor:
    """The reference embedding ``(d,)``: the mean of each item's ``per_item`` most co-occurring features, unit norm."""
    scores = co_occurrence_scores(items)
    chosen = [
        _unit(item.double())[score.topk(min(per_item, score.numel())).indices]
        for item, score in zip(items, scores, strict=True)
    ]
    return _unit(torch.cat(chosen).mean(dim=0))


def build_references(
    concepts: torch.Tensor,
    item_embeddings: torch.Tensor,
    item_features: Sequence[torch.Tensor],
    *,
    k: int,
    per_item: int = 1,
) -> torch.Tensor:
    """One co-segmented reference per concept ``(c, d)``: retrieve ``k`` items for it, then co-segment them."""
    references = []
    for concept in concepts:
        picked = retrieve(concept, item_embeddings, k)
        references.append(co_segment_reference([item_features[int(i)] for i in picked], per_item=per_item))
    return torch.stack(references)


def label_features(
    features: torch.Tensor, references: torch.Tensor, *, background_threshold: float | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(labels, similarities)`` for features ``(n, d)``: the concept with the most similar reference.

    With ``background_threshold``, features whose best similarity is below it get label ``-1`` (background).
    """
    sims = _unit(features.double()) @ _unit(references.double()).T
    best, labels = sims.max(dim=-1)
    if background_threshold is not None:
        labels = torch.where(best < background_threshold, torch.full_like(labels, -1), labels)
    return labels, sims
