"""Small synthetic tasks the data tools' tests and claim benchmarks share."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["anomaly_sets"]


def anomaly_sets(
    count: int, size: int = 10, dim: int = 4, outliers: int = 2, seed: int = 0
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Set anomaly detection: each set has ``size − outliers`` points around a set-specific random centre and
    ``outliers`` points around another; the optimal subset is the outliers. Whether a point is an outlier depends on
    the rest of its set, never on the point alone. Returns ``(sets, targets)`` (``count × size × dim``, 0/1)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    sets = np.zeros((count, size, dim))
    targets = np.zeros((count, size))
    for s in range(count):
        normal, odd = rng.normal(size=dim) * 2, rng.normal(size=dim) * 2
        members = rng.permutation(size)[:outliers]
        sets[s] = normal + 0.4 * rng.normal(size=(size, dim))
        sets[s, members] = odd + 0.4 * rng.normal(size=(outliers, dim))
        targets[s, members] = 1.0
    return sets, targets
