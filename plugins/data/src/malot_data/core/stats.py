"""Small numpy statistics shared by the tools: softmax, Shannon entropy, histogram entropy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["entropy", "histogram_entropy", "softmax", "to_probabilities"]


def softmax(logits: Any) -> NDArray[np.float64]:
    """Row-wise softmax of a logit matrix (numerically stable)."""
    import numpy as np

    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: NDArray[np.float64] = e / e.sum(axis=1, keepdims=True)
    return out


def to_probabilities(scores: Any, *, kind: str) -> NDArray[np.float64]:
    """Class probabilities from ``kind`` = ``"probs"`` (rows must sum to 1) or ``"logits"`` (softmax)."""
    import numpy as np

    from malot.errors import ToolError

    matrix = np.asarray(scores, dtype=np.float64)
    if kind == "logits":
        return softmax(matrix)
    if (matrix < -1e-9).any() or not np.allclose(matrix.sum(axis=1), 1.0, atol=1e-4):
        raise ToolError("probabilities must be non-negative and sum to 1 per row", hint="pass logits with kind=logits")
    return np.clip(matrix, 0.0, 1.0)


def entropy(probs: Any) -> NDArray[np.float64]:
    """Shannon entropy (nats) of each row of a probability matrix."""
    import numpy as np

    p = np.asarray(probs, dtype=np.float64)
    out: NDArray[np.float64] = -(p * np.log(np.clip(p, 1e-12, None))).sum(axis=1)
    return out


def histogram_entropy(values: Any, bins: int = 10) -> float:
    """Entropy (nats) of the ``bins``-bin histogram of ``values``: 0 for a constant, ``log(bins)`` at most."""
    import numpy as np

    v = np.asarray(values, dtype=np.float64)
    if v.size == 0 or float(v.max() - v.min()) <= 1e-12 * max(1.0, float(abs(v).max())):
        return 0.0
    counts, _ = np.histogram(v, bins=bins)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())
