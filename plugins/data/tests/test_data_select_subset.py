"""Subset selection with background information: equivariant scores, invariant subsets, context-aware selection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from malot_data.core.synthetic import anomaly_sets
from malot_data.select_subset import build_set_scorer, jaccard, select_top, train_set_scorer

from malot.errors import ToolError
from malot.tools import tool_of
from malot.tools.registry import ToolRegistry


@pytest.mark.parametrize("background", [True, False])
def test_scores_are_permutation_equivariant_and_padding_is_ignored(background: bool) -> None:
    model = build_set_scorer(3, 8, background=background, seed=0)
    x = torch.randn(2, 6, 3)
    mask = torch.ones(2, 6, dtype=torch.bool)
    perm = torch.randperm(6)
    with torch.no_grad():
        scores = model(x, mask)
        assert torch.allclose(model(x[:, perm], mask), scores[:, perm], atol=1e-6)
        padded = torch.cat([x, 100 * torch.randn(2, 3, 3)], dim=1)
        pad_mask = torch.cat([mask, torch.zeros(2, 3, dtype=torch.bool)], dim=1)
        assert torch.allclose(model(padded, pad_mask)[:, :6], scores, atol=1e-6)
    selected = select_top(model, x.numpy(), k=2)
    permuted = select_top(model, x[:, perm].numpy(), k=2)  # positions in the permuted order map back to the same set
    assert [sorted(int(perm[i]) for i in s) for s in permuted] == selected


def test_background_changes_an_elements_score() -> None:
    model = build_set_scorer(2, 8, background=True, seed=1)
    point = torch.tensor([[1.0, 1.0]])
    a = torch.cat([point, torch.zeros(3, 2)])[None]
    b = torch.cat([point, torch.full((3, 2), 5.0)])[None]
    mask = torch.ones(1, 4, dtype=torch.bool)
    with torch.no_grad():
        assert float(model(a, mask)[0, 0]) != pytest.approx(float(model(b, mask)[0, 0]))
        plain = build_set_scorer(2, 8, background=False, seed=1)
        assert float(plain(a, mask)[0, 0]) == pytest.approx(float(plain(b, mask)[0, 0]))


@pytest.mark.slow
def test_background_information_finds_context_dependent_anomalies() -> None:
    sets, targets = anomaly_sets(300, seed=0)
    test_sets, test_targets = anomaly_sets(60, seed=1)
    truth = [sorted(np.flatnonzero(t).tolist()) for t in test_targets]
    scores = {}
    for background in (True, False):
        trained = train_set_scorer(sets, targets, background=background, steps=300, hidden=32, seed=0)
        picks = select_top(trained.model, test_sets, k=2)
        scores[background] = np.mean([jaccard(p, t) for p, t in zip(picks, truth, strict=True)])
    assert scores[True] > 0.8 and scores[True] > scores[False] + 0.3


def test_bad_input() -> None:
    sets, targets = anomaly_sets(4, seed=0)
    with pytest.raises(ToolError, match="sets × elements"):
        train_set_scorer(sets[0], targets)
    with pytest.raises(ToolError, match="0/1"):
        train_set_scorer(sets, targets * 2)
    with pytest.raises(ToolError, match="empty set"):
        train_set_scorer(sets, targets, np.zeros((4, 10)))
    bad = sets.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ToolError, match="NaN"):
        train_set_scorer(bad, targets)


def test_tool_trains_and_selects(tmp_path: Path) -> None:
    import malot_data.select_subset as module

    sets, targets = anomaly_sets(40, seed=2)
    np.savez(tmp_path / "d.npz", sets=sets, targets=targets, queries=sets[:3], wrong=np.zeros((3, 10, 5)))
    registry = ToolRegistry()
    t = tool_of(module.select_subset)
    assert t is not None
    registry.register(t)
    args = {
        "sets": f"{tmp_path}/d.npz:sets",
        "targets": f"{tmp_path}/d.npz:targets",
        "queries": f"{tmp_path}/d.npz:queries",
        "k": 2,
        "steps": 5,
        "hidden": 8,
    }
    out = registry.run_sync("select_subset", args).model_dump()
    assert len(out["selections"]) == 3 and all(len(s) == 2 for s in out["selections"])
    with pytest.raises(ToolError, match="features"):
        registry.run_sync("select_subset", {**args, "queries": f"{tmp_path}/d.npz:wrong"})
