"""Shared helpers: exact proportional budgets, array files and their checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from malot_data.core.arrays import check_labels, check_matrix, load_array, save_arrays
from malot_data.core.budget import proportional_split
from malot_data.core.stats import histogram_entropy

from malot.errors import ToolError


@pytest.mark.parametrize("total", [0, 1, 7, 100])
def test_proportional_split_is_exact_and_respects_caps(total: int) -> None:
    parts = proportional_split([5.0, 1.0, 0.0, 3.0], total, caps=[4, 100, 100, 100])
    assert sum(parts) == total and parts[0] <= 4
    assert parts[2] == 0 or total > 104  # a zero-weight group only fills in when the others are capped
    assert proportional_split([0.0, 0.0], 3) in ([2, 1], [1, 2])
    assert proportional_split([1.0, 0.0], 3, caps=[1, 5]) == [1, 2]


def test_proportional_split_refuses_impossible_budgets() -> None:
    with pytest.raises(ToolError, match="exceeds"):
        proportional_split([1.0, 1.0], 5, caps=[1, 1])
    with pytest.raises(ToolError, match="negative"):
        proportional_split([1.0], -1)


def test_array_files_round_trip_and_errors(tmp_path: Path) -> None:
    save_arrays(tmp_path / "a.npz", x=np.eye(2), y=np.arange(2))
    assert np.array_equal(load_array(f"{tmp_path}/a.npz:y"), np.arange(2))
    (tmp_path / "m.csv").write_text("1,2\n3 4\n", encoding="utf-8")
    assert load_array(str(tmp_path / "m.csv")).tolist() == [[1.0, 2.0], [3.0, 4.0]]
    with pytest.raises(ToolError, match="no array 'z'"):
        load_array(f"{tmp_path}/a.npz:z")
    with pytest.raises(ToolError, match="does not exist"):
        load_array(str(tmp_path / "missing.npy"))
    with pytest.raises(ToolError, match="unsupported"):
        (tmp_path / "f.parquet").write_text("", encoding="utf-8")
        load_array(str(tmp_path / "f.parquet"))
    with pytest.raises(ToolError, match=r"\.npz"):
        save_arrays(tmp_path / "out.npy", x=np.eye(2))


def test_checks() -> None:
    with pytest.raises(ToolError, match="vector"):
        check_matrix(np.zeros(3), name="x")
    with pytest.raises(ToolError, match="at least"):
        check_matrix(np.zeros((0, 3)), name="x")
    assert check_matrix(np.zeros((2, 2, 2)), name="x").shape == (2, 4)  # images are flattened
    with pytest.raises(ToolError, match="integer"):
        check_labels(np.array([0.5, 1.0]), name="y")
    with pytest.raises(ToolError, match="below 2"):
        check_labels(np.array([0, 2]), name="y", classes=2)
    assert histogram_entropy(np.ones(5)) == 0.0
