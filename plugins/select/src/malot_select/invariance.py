"""The role of invariance in transfer (Speicher, Nanda and Gummadi, TMLR 2024, "Understanding the Role of
Invariance in Transfer Learning"): how invariant a representation is to a controlled transformation.

Pairs ``(x, T(x))`` differ in exactly one factor of variation (made by :mod:`malot_select.core.factors` or by the
user). The raw invariance of a representation ``f`` to ``T`` is the mean cosine similarity
``inv_T = mean_i cos(f(xᵢ), f(T(xᵢ)))``; a perfectly invariant representation scores 1. Because unrelated inputs can
already have similar representations, the paper compares against a reference of unrelated pairs; we report the
normalised ``(inv_T - inv_ref) / (1 - inv_ref)`` as well, with ``inv_ref`` the mean cosine of the first images
paired with a random permutation of the second. The paper's claim, reproduced at toy scale in
``benchmarks/invariance_claim.py``: invariance to the transformations that the target task does not care about
predicts transfer performance better than source accuracy does.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_select.core.arrays import load_matrix
from malot_select.core.factors import FACTORS, factor_pairs

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["InvarianceInput", "InvarianceOutput", "invariance", "invariance_score_tool", "mean_cosine"]

_PAPER = "Speicher, Nanda and Gummadi 2024, Understanding the Role of Invariance in Transfer Learning (TMLR)"


def mean_cosine(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    """Mean cosine similarity of corresponding rows (a zero row counts as similarity 0 unless both are zero: 1)."""
    import numpy as np

    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    both_zero = (na == 0) & (nb == 0)
    denom = np.where(na * nb > 0, na * nb, 1.0)
    cos = np.where(both_zero, 1.0, np.sum(a * b, axis=1) / denom)
    return float(np.mean(cos))


def invariance(
    original: NDArray[np.float64], transformed: NDArray[np.float64], *, seed: int = 0
) -> tuple[float, float, float]:
    """Raw invariance, the unrelated-pair reference, and the normalised invariance (NaN if the reference is 1)."""
    import numpy as np

    raw = mean_cosine(original, transformed)
    perm = np.random.default_rng(seed).permutation(original.shape[0])
    reference = mean_cosine(original, transformed[perm])
    normalised = (raw - reference) / (1.0 - reference) if reference < 1.0 else float("nan")
    return raw, reference, normalised


class InvarianceInput(BaseModel):
    """Arguments of ``invariance_score``: representations of pairs, or a request to generate pairs to embed."""

    original: Any = Field(None, description="n x D representations of the original inputs (path or lists)")
    transformed: Any = Field(None, description="n x D representations of the transformed inputs, same order")
    generate_factor: str | None = Field(None, description=f"write image pairs differing in one of {', '.join(FACTORS)}")
    generate_to: str | None = Field(None, description=".npz file for the generated pairs (keys original, transformed)")
    pairs: int = Field(256, ge=2, le=100_000)
    classes: int = Field(8, ge=1, le=64)
    seed: int = 0


class InvarianceOutput(BaseModel):
    """Invariance scores (when representations were given) or the generated file."""

    invariance: float | None = None
    reference: float | None = None
    normalised: float | None = None
    generated: str | None = None
    image_shape: list[int] | None = None


@tool(
    name="invariance_score",
    family="select",
    paper=_PAPER,
    tags=("transferability", "invariance", "representation", "synthetic-data", "needs:original", "needs:transformed"),
)
def invariance_score_tool(args: InvarianceInput) -> InvarianceOutput:
    """Score how invariant a representation is to a transformation (mean cosine of f(x) and f(T x); 1 = invariant),
    or generate controlled-factor image pairs (translate, rotate, brightness, noise) to embed first."""
    import numpy as np

    if args.generate_factor is not None:
        if args.generate_to is None:
            raise ToolError("generating pairs needs an output file", hint="pass generate_to=PAIRS.npz")
        first, second = factor_pairs(args.pairs, args.classes, args.generate_factor, seed=args.seed)
        out = Path(args.generate_to)
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez(out, original=first, transformed=second)
        side = round(first.shape[1] ** 0.5)
        return InvarianceOutput(generated=str(out), image_shape=[side, side])
    if args.original is None or args.transformed is None:
        raise ToolError("give both representation matrices", hint="original and transformed, one row per pair")
    a = load_matrix(args.original, "original", min_rows=2)
    b = load_matrix(args.transformed, "transformed", rows=a.shape[0])
    if a.shape[1] != b.shape[1]:
        raise ToolError(f"original has {a.shape[1]} dims, transformed {b.shape[1]}", hint="embed both with one model")
    raw, reference, normalised = invariance(a, b, seed=args.seed)
    return InvarianceOutput(
        invariance=raw, reference=reference, normalised=None if np.isnan(normalised) else normalised
    )
