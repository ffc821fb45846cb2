"""Loki (Fu et al., "Geometry-Aware Adaptation for Pretrained Models").

A classifier trained on ``K`` observed labels outputs probabilities ``p_1..p_K``. When the label space carries a
metric ``d`` (a graph over labels, label embeddings), Loki predicts the Fréchet mean of that distribution over *all*
labels instead of the argmax::

    y_hat = argmin_{y in Y} sum_i p_i * d(y, lambda_i)^2

where ``lambda_i`` is the label of class ``i``. The argmin ranges over the whole label space, so labels the model
never saw (between observed ones) can be predicted; with a uniform distribution over two ends of a path, the midpoint
wins.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["LokiPredictor", "euclidean_distances", "frechet_mean_predict", "graph_distances"]


def graph_distances(
    n_labels: int, edges: Sequence[tuple[int, int]], weights: Sequence[float] | None = None
) -> torch.Tensor:
    """All-pairs shortest-path distances (Floyd–Warshall) of an undirected weighted graph over ``n_labels`` labels.

    Unreachable pairs stay ``inf``; weights default to 1 per edge.
    """
    dist = torch.full((n_labels, n_labels), float("inf"), dtype=torch.float64)
    dist.fill_diagonal_(0.0)
    ws = list(weights) if weights is not None else [1.0] * len(edges)
    if len(ws) != len(edges):
        raise ValueError(f"got {len(edges)} edges but {len(ws)} weights")
    for (a, b), w in zip(edges, ws, strict=True):
        if w < 0:
            raise ValueError(f"edge ({a}, {b}) has a negative weight {w}")
        dist[a, b] = min(float(dist[a, b]), w)
        dist[b, a] = dist[a, b]
    for k in range(n_labels):
        dist = torch.minimum(dist, dist[:, k : k + 1] + dist[k : k + 1, :])
    return dist


def euclidean_distances(embeddings: torch.Tensor) -> torch.Tensor:
    """Pairwise Euclidean distances between label embeddings ``(n_labels, dim)``."""
    e = embeddings.double()
    return torch.cdist(e, e)


def frechet_mean_predict(probs: torch.Tensor, distances_to_observed: torch.Tensor) -> torch.Tensor:
    """Loki's prediction: ``argmin_y sum_i p_i d(y, lambda_i)^2``.

    ``probs`` is ``(batch, K)`` over the observed classes; ``distances_to_observed`` is ``(n_labels, K)``: the metric
    from every candidate label to every observed class's label. Returns ``(batch,)`` candidate indices.
    """
    risk = probs.double() @ (distances_to_observed.double() ** 2).T
    return risk.argmin(dim=-1)


class LokiPredictor:
    """Maps a pretrained classifier's probabilities over its ``observed`` labels to predictions over all labels.

    ``distances`` is the full ``(n_labels, n_labels)`` label metric; ``observed[i]`` is the label of class ``i``.
    With ``observed`` covering every label and a metric that separates labels, Loki reduces to a Bayes-risk rule
    that still prefers the argmax when the probability mass is concentrated.
    """

    def __init__(self, distances: torch.Tensor, observed: Sequence[int]) -> None:
        if distances.ndim != 2 or distances.shape[0] != distances.shape[1]:
            raise ValueError(f"distances must be a square label metric, got shape {tuple(distances.shape)}")
        if not observed:
            raise ValueError("Loki needs at least one observed label")
        self.distances = distances.double()
        self.observed = list(observed)
        self._to_observed = self.distances[:, self.observed]

    def predict(self, probs: torch.Tensor) -> torch.Tensor:
        """Predicted label index (over all labels) for each row of ``probs`` ``(batch, K)``."""
        if probs.shape[-1] != len(self.observed):
            raise ValueError(f"probabilities have {probs.shape[-1]} classes but {len(self.observed)} observed labels")
        return frechet_mean_predict(probs, self._to_observed)

    def expected_squared_distance(self, probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``sum_i p_i d(y, lambda_i)^2`` at the given labels: the Fréchet variance Loki minimises."""
        return (probs.double() * self._to_observed[labels] ** 2).sum(-1)
