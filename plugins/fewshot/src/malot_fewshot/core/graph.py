"""Affinity graphs over samples: k-nearest-neighbour and Gaussian affinities, row-stochastic normalisation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from malot.errors import ToolError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["gaussian_affinity", "knn_affinity", "knn_indices", "row_stochastic", "squared_distances"]


def squared_distances(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """Matrix of squared Euclidean distances ``‖a_i − b_j‖²`` (clipped at 0 against rounding)."""
    import numpy as np

    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    out: NDArray[np.float64] = np.maximum(d, 0.0)
    return out


def knn_indices(x: NDArray[np.float64], k: int) -> NDArray[np.int64]:
    """Indices of the ``k`` nearest other rows of ``x`` for every row (scikit-learn's exact neighbour search)."""
    from sklearn.neighbors import NearestNeighbors

    if not 0 < k < len(x):
        raise ToolError(f"k={k} neighbours needs between 1 and {len(x) - 1}", hint="lower k or give more samples")
    index = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x, return_distance=False)
    out: NDArray[np.int64] = index[:, 1:].astype("int64")
    return out


def knn_affinity(x: NDArray[np.float64], k: int, *, sigma: float | None = None) -> NDArray[np.float64]:
    """Symmetric kNN affinity ``w_ij`` (1, or a Gaussian of the distance when ``sigma`` is given), zero diagonal."""
    import numpy as np

    n = len(x)
    idx = knn_indices(x, k)
    w = np.zeros((n, n))
    rows = np.repeat(np.arange(n), k)
    if sigma is None:
        w[rows, idx.reshape(-1)] = 1.0
    else:
        d = ((x[rows] - x[idx.reshape(-1)]) ** 2).sum(1)
        w[rows, idx.reshape(-1)] = np.exp(-d / (2.0 * sigma**2))
    return np.maximum(w, w.T)


def gaussian_affinity(x: NDArray[np.float64], sigma: float) -> NDArray[np.float64]:
    """Dense Gaussian kernel ``exp(−‖x_i − x_j‖² / 2σ²)``: positive semi-definite (the diagonal is kept)."""
    import numpy as np

    if sigma <= 0:
        raise ToolError(f"sigma must be positive, got {sigma}")
    return np.exp(-squared_distances(x, x) / (2.0 * sigma**2))


def row_stochastic(w: NDArray[np.float64]) -> NDArray[np.float64]:
    """``D⁻¹W``: every row divided by its sum (rows must have a positive sum)."""
    sums = w.sum(1, keepdims=True)
    if (sums <= 0).any():
        raise ToolError("a node has no edges; cannot normalise its row", hint="raise k or check for isolated samples")
    out: NDArray[np.float64] = w / sums
    return out
