"""MBTL: the centre first, never a repeated context, the acquisition formula, the tool and its errors."""

from __future__ import annotations

import numpy as np
import pytest
from malot_select.mbtl import mbtl_acquisition, mbtl_next, mbtl_sequence, next_training_task_tool

from malot.errors import ToolError
from malot.tools import ToolRegistry


@pytest.mark.parametrize("count", [5, 11, 21])
def test_first_pick_is_the_centre_of_a_uniform_context_range(count: int) -> None:
    contexts = np.linspace(-3.0, 5.0, count)[:, None]
    # a gentle gap: every target stays above the floor and the centre wins strictly
    index, acquisition = mbtl_next(contexts, [], [], slope=0.05)
    assert index == count // 2
    assert acquisition[index] > np.delete(acquisition, index).max()
    # a steep gap saturates at the floor; the tie between central contexts still goes to the centre
    index, acquisition = mbtl_next(contexts, [], [], slope=0.5)
    assert index == count // 2
    assert acquisition[index] == pytest.approx(acquisition.max())


def test_first_pick_is_the_medoid_for_uneven_contexts() -> None:
    contexts = np.array([[0.0], [0.1], [0.2], [0.3], [5.0]])
    index, _ = mbtl_next(contexts, [], [], slope=0.1, prior_mean=1.0)
    dist = np.abs(contexts - contexts.T).sum(axis=1)
    assert index == int(np.argmin(dist))


@pytest.mark.slow
def test_sequence_never_repeats_a_context_and_covers_all_of_them() -> None:
    contexts = np.linspace(0.0, 1.0, 6)[:, None]
    picked = mbtl_sequence(contexts, lambda i: 1.0 - 0.2 * float(contexts[i, 0]), 6, slope=2.0, beta=0.0)
    assert sorted(picked) == list(range(6))
    assert picked[0] in (2, 3)


def test_acquisition_is_the_expected_total_improvement() -> None:
    dist = np.abs(np.arange(3.0)[:, None] - np.arange(3.0)[None, :])
    ucb = np.array([1.0, 2.0, 1.0])
    best = np.array([0.5, 0.0, 0.0])
    got = mbtl_acquisition(dist, ucb, best, slope=1.0)
    # candidate 1 predicts [1, 2, 1] over the targets: gains 0.5 + 2 + 1
    assert got.tolist() == pytest.approx([0.5 + 0.0 + 0.0, 3.5, 0.0 + 0.0 + 1.0])


def test_tool_through_the_registry_excludes_trained_contexts() -> None:
    registry = ToolRegistry()
    registry.register(next_training_task_tool)
    first = registry.run_sync(
        "next_training_task", {"contexts": [0, 1, 2, 3, 4], "slope": 0.3}, isolation="inline"
    ).model_dump()
    assert first["next_index"] == 2 and first["next_context"] == 2.0
    second = registry.run_sync(
        "next_training_task",
        {"contexts": [0, 1, 2, 3, 4], "trained": [2], "performance": [0.9], "slope": 0.3},
        isolation="inline",
    ).model_dump()
    assert second["next_index"] != 2 and second["acquisition"][2] is None
    assert second["gp_mean"][2] == pytest.approx(0.9, abs=0.02)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"contexts": [0, 1], "trained": [0, 0], "performance": [1, 1], "slope": 1}, "twice"),
        ({"contexts": [0, 1], "trained": [0], "performance": [], "slope": 1}, "one performance value"),
        ({"contexts": [0, 1], "trained": [5], "performance": [1], "slope": 1}, "outside"),
        ({"contexts": [0, 1], "slope": -1}, "greater than 0"),
        ({"contexts": [0, 1], "trained": [0, 1], "performance": [1, 1], "slope": 1}, "already trained"),
        ({"contexts": [0, float("nan")], "slope": 1}, "NaN"),
    ],
)
def test_tool_rejects_bad_input(args: dict[str, object], message: str) -> None:
    registry = ToolRegistry()
    registry.register(next_training_task_tool)
    with pytest.raises(ToolError, match=message):
        registry.run_sync("next_training_task", args, isolation="inline")
