"""``examples/embed_prover.py`` with a short scripted model under the default 4 samples: the statement the script
cannot serve is reported with its error, the run finishes, no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.provers.helpers import load_suite

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.lean
@pytest.mark.slow
def test_errors_are_reported_per_statement(lean_exe: Path, tmp_path: Path) -> None:
    record = load_suite()[0]
    script = tmp_path / "script.jsonl"
    script.write_text(json.dumps(f"  {record['wrong_proof']}\n```") + "\n", encoding="utf-8")  # one line only
    config = tmp_path / "malot.toml"
    config.write_text('[retrieval]\nretriever = "none"\n[lean]\nsandbox = "off"\n', encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / "embed_prover.py"), "--config", str(config), "--model",
         f"script:{script}", "--lean", str(lean_exe), record["header"] + record["statement"]],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    [result] = json.loads(proc.stdout[proc.stdout.index("[") :])
    assert result["problem"] == record["name"] and result["proved"] is False
    assert "scripted model ran out of responses" in result["error"]
