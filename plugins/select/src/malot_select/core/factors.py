"""A synthetic image generator with controlled factors of variation (after Transforms-2D of Speicher et al. 2024).

Each image is a ``size x size`` canvas holding one ``glyph x glyph`` binary glyph (its class, from a seeded glyph
bank) transformed by known factors: ``translate`` (its top-left position), ``rotate`` (a multiple of 90°),
``brightness`` (a gain) and ``noise`` (seeded pixel noise). :func:`factor_pairs` makes pairs that differ in exactly
one factor, which is what an invariance score compares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from malot.errors import ToolError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["FACTORS", "FactorData", "factor_pairs", "generate", "glyph_bank", "render", "sample_factors"]

FACTORS = ("translate", "rotate", "brightness", "noise")


def glyph_bank(classes: int, glyph: int = 4, seed: int = 0) -> NDArray[np.float64]:
    """``classes`` distinct random binary glyphs (no two equal up to rotation), half their pixels on."""
    import numpy as np

    rng = np.random.default_rng(seed)
    bank: list[NDArray[np.float64]] = []
    seen: set[bytes] = set()
    while len(bank) < classes:
        g = (rng.random((glyph, glyph)) < 0.5).astype(np.float64)
        keys = {np.rot90(g, k).tobytes() for k in range(4)}
        if g.sum() < 3 or keys & seen:
            continue
        seen |= keys
        bank.append(g)
    return np.stack(bank)


@dataclass
class FactorData:
    """Images with their class labels and the value of every factor."""

    images: NDArray[np.float64]
    labels: NDArray[np.int64]
    factors: dict[str, NDArray[np.float64]]


def sample_factors(
    n: int, size: int, glyph: int, vary: tuple[str, ...], rng: np.random.Generator
) -> dict[str, NDArray[np.float64]]:
    """Factor values for ``n`` images: the factors in ``vary`` are random, the others at their canonical value."""
    import numpy as np

    unknown = set(vary) - set(FACTORS)
    if unknown:
        raise ToolError(f"unknown factors {sorted(unknown)}", hint=f"choose from {', '.join(FACTORS)}")
    span = size - glyph + 1
    centre = (span - 1) // 2
    return {
        "x": rng.integers(0, span, n).astype(np.float64) if "translate" in vary else np.full(n, float(centre)),
        "y": rng.integers(0, span, n).astype(np.float64) if "translate" in vary else np.full(n, float(centre)),
        "rotate": rng.integers(0, 4, n).astype(np.float64) if "rotate" in vary else np.zeros(n),
        "brightness": rng.uniform(0.5, 1.5, n) if "brightness" in vary else np.ones(n),
        "noise": rng.integers(0, 2**31, n).astype(np.float64) if "noise" in vary else np.full(n, -1.0),
    }


def render(
    bank: NDArray[np.float64], labels: NDArray[np.int64], factors: dict[str, NDArray[np.float64]], size: int
) -> NDArray[np.float64]:
    """Draw the images (``n x size²``, flattened) for given labels and factor values."""
    import numpy as np

    glyph = bank.shape[1]
    out = np.zeros((labels.size, size, size))
    for i, label in enumerate(labels):
        g = np.rot90(bank[label], int(factors["rotate"][i])) * factors["brightness"][i]
        x, y = int(factors["x"][i]), int(factors["y"][i])
        out[i, y : y + glyph, x : x + glyph] = g
        seed = int(factors["noise"][i])
        if seed >= 0:
            out[i] += 0.3 * np.random.default_rng(seed).standard_normal((size, size))
    return out.reshape(labels.size, -1)


def generate(
    n: int,
    classes: int,
    *,
    size: int = 10,
    glyph: int = 4,
    vary: tuple[str, ...] = FACTORS,
    seed: int = 0,
    bank_seed: int = 0,
) -> FactorData:
    """``n`` images of ``classes`` glyph classes with the factors in ``vary`` random."""
    import numpy as np

    rng = np.random.default_rng(seed)
    bank = glyph_bank(classes, glyph, bank_seed)
    labels = rng.integers(0, classes, n).astype(np.int64)
    factors = sample_factors(n, size, glyph, vary, rng)
    return FactorData(render(bank, labels, factors, size), labels, factors)


def factor_pairs(
    n: int,
    classes: int,
    factor: str,
    *,
    size: int = 10,
    glyph: int = 4,
    vary: tuple[str, ...] = FACTORS,
    seed: int = 0,
    bank_seed: int = 0,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``n`` pairs of images that are identical except for ``factor`` (re-drawn at random in the second image)."""
    import numpy as np

    if factor not in FACTORS:
        raise ToolError(f"unknown factor {factor!r}", hint=f"choose from {', '.join(FACTORS)}")
    rng = np.random.default_rng(seed)
    bank = glyph_bank(classes, glyph, bank_seed)
    labels = rng.integers(0, classes, n).astype(np.int64)
    first = sample_factors(n, size, glyph, vary, rng)
    changed = sample_factors(n, size, glyph, (factor,), rng)
    second = dict(first)
    keys = {"translate": ("x", "y"), "rotate": ("rotate",), "brightness": ("brightness",), "noise": ("noise",)}[factor]
    for key in keys:
        second[key] = changed[key]
    return render(bank, labels, first, size), render(bank, labels, second, size)
