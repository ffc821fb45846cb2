"""Matching recovered latent classes to true ones: the Hungarian assignment (SciPy) used by the tests and benchmarks."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["best_permutation"]


def best_permutation(confusion: NDArray[np.float64]) -> NDArray[np.int64]:
    """``perm`` maximising ``Σ_k confusion[k, perm[k]]`` (rows: recovered classes, columns: true classes)."""
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(-confusion)
    perm = np.zeros(confusion.shape[0], dtype=np.int64)
    perm[rows] = cols
    return perm
