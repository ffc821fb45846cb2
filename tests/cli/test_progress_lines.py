"""Progress of long retrieval commands as plain lines when stderr is not a terminal (logs, CI, nohup)."""

from __future__ import annotations

import pytest

from malot.cli.retrieval import _ProgressLines


def test_a_line_per_tenth_of_each_stage(capsys: pytest.CaptureFixture[str]) -> None:
    progress = _ProgressLines(every_s=3600)
    for done in range(1, 101):
        progress("train", done, 100)
    progress("mine", 1, 2)
    progress("mine", 2, 2)
    lines = capsys.readouterr().err.strip().splitlines()
    train = [line for line in lines if line.startswith("train: ")]
    assert [line.split()[1] for line in train] == ["1/100"] + [f"{10 * i}/100" for i in range(1, 11)]  # start, tenths
    assert [line.split()[1] for line in lines if line.startswith("mine: ")] == ["1/2", "2/2"]
    assert train[-1].startswith("train: 100/100 (100%), ") and train[-1].endswith("s")
