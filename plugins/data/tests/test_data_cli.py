"""The data plugin through its entry point and the CLI, as a user (or an agent) reaches it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from malot.cli.app import main

TOOLS = {
    "prune_source",
    "select_instructions",
    "semdedup",
    "distill_unlabeled",
    "allocate_samples",
    "datm_distill",
    "select_subset",
    "idm_select",
    "dwa_synthesize",
}


def test_every_tool_is_registered_by_the_entry_point_with_tags() -> None:
    from malot.tools.advisor import advisor_tags
    from malot.tools.plugins import get_registry, plugin_statuses

    registry = get_registry(allow=["data"])  # the default registry, as the CLI and agents use it
    assert [s.state for s in plugin_statuses() if s.name == "data"] == ["loaded"]
    found = {t.name: t for t in registry.list(family="data")}
    assert set(found) == TOOLS
    for t in found.values():
        assert t.metadata.paper and t.description and t.metadata.plugin == "data"
        assert any(tag.startswith("needs:") for tag in t.metadata.tags)
        assert any(tag.startswith("setting:") for tag in advisor_tags(t)) or t.name in {"semdedup", "select_subset"}
        assert t.openai_schema()["function"]["parameters"]["type"] == "object"


def test_cli_runs_allocate_samples_and_rejects_bad_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MALOT_PLUGINS", "data")
    rng = np.random.default_rng(0)
    preds = rng.normal(size=(40, 6))
    np.savez(tmp_path / "a.npz", p=preds, y=preds[:, 1] - preds[:, 3])
    args = {"source_predictions": f"{tmp_path}/a.npz:p", "target": f"{tmp_path}/a.npz:y", "budget": 30, "alpha": 0.05}
    code = main(["tools", "run", "allocate_samples", "--args", json.dumps(args), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert result["support"] == [1, 3] and sum(result["allocation"]) == 30
    code = main(["tools", "run", "allocate_samples", "--args", json.dumps({**args, "target": "missing.npy"})])
    captured = capsys.readouterr()
    assert code == 2 and "does not exist" in captured.err and "Traceback" not in captured.err
    code = main(["tools", "show", "allocate_samples"])
    assert code == 0 and "Lasso" in capsys.readouterr().out
