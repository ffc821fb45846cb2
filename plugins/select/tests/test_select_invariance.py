"""Invariance scores: an invariant representation scores 1, the generator changes exactly one factor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from malot_select.core.factors import factor_pairs, generate, glyph_bank
from malot_select.invariance import invariance, invariance_score_tool

from malot.errors import ToolError
from malot.tools import ToolRegistry


def test_an_invariant_representation_scores_one_and_raw_pixels_do_not() -> None:
    first, second = factor_pairs(64, 4, "translate", vary=("translate",), seed=0)

    def pooled(images: np.ndarray) -> np.ndarray:
        # |2-D FFT|: moving a glyph inside the zero background is a circular shift, which leaves it unchanged
        return np.abs(np.fft.fft2(images.reshape(-1, 10, 10))).reshape(images.shape[0], -1)

    raw, _, normalised = invariance(pooled(first), pooled(second))
    assert raw == pytest.approx(1.0) and normalised == pytest.approx(1.0)
    pixel_raw, _, pixel_norm = invariance(first, second)
    assert pixel_raw < 0.9 and pixel_norm < 0.9


def test_pairs_differ_only_in_the_requested_factor() -> None:
    for factor in ("rotate", "brightness"):
        first, second = factor_pairs(50, 4, factor, vary=("translate",), seed=1)
        # same glyph, same place: the set of lit pixel positions only changes by the factor
        if factor == "brightness":
            on = first > 0
            assert np.array_equal(on, second > 0)
            ratio = second[on] / first[on]
            assert np.all(ratio > 0.3) and np.all(ratio < 3.1)
        else:
            assert np.allclose(first.sum(axis=1), second.sum(axis=1))
    bank = glyph_bank(6)
    assert len({g.tobytes() for g in bank}) == 6
    data = generate(40, 3, vary=(), seed=2)
    assert np.all(data.factors["rotate"] == 0) and np.all(data.factors["noise"] == -1)


def test_tool_generates_pairs_and_scores_them_through_the_registry(tmp_path: Path) -> None:
    registry = ToolRegistry()
    registry.register(invariance_score_tool)
    out = registry.run_sync(
        "invariance_score",
        {"generate_factor": "noise", "generate_to": str(tmp_path / "p.npz"), "pairs": 20},
        isolation="inline",
    ).model_dump()
    assert out["image_shape"] == [10, 10]
    with np.load(out["generated"]) as pairs:
        a, b = pairs["original"], pairs["transformed"]
    np.save(tmp_path / "a.npy", a)
    scored = registry.run_sync(
        "invariance_score", {"original": str(tmp_path / "a.npy"), "transformed": b.tolist()}, isolation="inline"
    ).model_dump()
    assert 0.0 < scored["invariance"] < 1.0 and scored["reference"] < scored["invariance"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"original": [[1.0, 0.0], [0.0, 1.0]]}, "both representation matrices"),
        ({"original": [[1.0, 0.0], [0.0, 1.0]], "transformed": [[1.0, 0.0]]}, "1 rows but 2"),
        ({"original": [[1.0, 0.0], [0.0, 1.0]], "transformed": [[1.0], [0.0]]}, "2 dims"),
        ({"generate_factor": "shear", "generate_to": "x.npz"}, "unknown factor"),
        ({"generate_factor": "rotate"}, "needs an output file"),
        ({"original": "missing.npy", "transformed": "missing.npy"}, "does not exist"),
    ],
)
def test_tool_rejects_bad_input(args: dict[str, object], message: str) -> None:
    registry = ToolRegistry()
    registry.register(invariance_score_tool)
    with pytest.raises(ToolError, match=message):
        registry.run_sync("invariance_score", args, isolation="inline")
