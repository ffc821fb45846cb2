"""``malot prove --strategy decompose`` and ``--repair`` from the command line (scripted model, real Lean 4.35)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from malot.cli.app import main

from .decompose_script import HEADER, LEMMA_PROOFS, THEOREMS

pytestmark = [pytest.mark.lean, pytest.mark.slow]

CONFIG = """
[decompose]
automation = ["fun h => h", "True'.intro"]
negation = "({goal}) → False'"
lemma_samples = 1
"""


def test_prove_with_the_decompose_strategy(tmp_path: Path, lean_exe: Path, capsys: pytest.CaptureFixture[str]) -> None:
    statement, skeletons = THEOREMS["and_swap3"]
    lean_file = tmp_path / "T.lean"
    lean_file.write_text(HEADER + statement + "\n  sorry\n", encoding="utf-8")
    script = {
        "informal proof plan": "1. Take p. 2. Take r. 3. Pair them.",
        "proof skeleton": f"```lean4\n{statement}\n{skeletons[0]}\n```",
        "theorem and_swap3_step1": f"```lean4\n{LEMMA_PROOFS['and_swap3_step1']}\n```",
        "theorem and_swap3_step2": f"```lean4\n{LEMMA_PROOFS['and_swap3_step2']}\n```",
    }
    (tmp_path / "script.json").write_text(json.dumps(script), encoding="utf-8")
    (tmp_path / "malot.toml").write_text(CONFIG, encoding="utf-8")
    args = ["--config", str(tmp_path / "malot.toml"), "prove", "--file", str(lean_file), "--theorem", "and_swap3"]
    args += ["--strategy", "decompose", "--template", "kimina-prover", "--samples", "1", "--json"]
    args += ["--model", f"script:{tmp_path / 'script.json'}", "--lean", str(lean_exe), "--retriever", "none"]
    args += ["--out", str(tmp_path / "out")]
    code = main(args)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    out = json.loads(captured.out)
    assert out["proved"] and out["strategy"] == "decompose"
    proof = (tmp_path / "out" / "proof.lean").read_text(encoding="utf-8")
    assert "theorem and_swap3_step2" in proof and "(and_swap3_step2 p q r h hp)" in proof


def test_repair_flag_is_accepted(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prove", "--help"]) == 0
    assert "--repair" in capsys.readouterr().out
    assert main(["eval", "run", "--help"]) == 0
    help_text = capsys.readouterr().out
    assert "--repair" in help_text and "--answer-mode" in help_text
