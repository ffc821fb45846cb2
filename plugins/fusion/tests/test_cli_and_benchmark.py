"""End to end: the family in ``malot tools list``, ``malot prove`` decoding with fusion, the speed benchmark."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path
from typing import Any

import pytest

from malot.agents import read_trace
from malot.cli.app import main

PLUGIN = Path(__file__).resolve().parent.parent
REPO = PLUGIN.parent.parent


def test_tools_list_shows_the_fusion_family(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tools", "list", "--family", "fusion", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    names = {t["name"] for t in listing["tools"]}
    assert names == {"dynamic_logits_fusion", "btm_ensemble", "loki", "binary_pv", "retrieve_coseg", "gpicl", "set2seq"}
    assert any(p["name"] == "fusion" and p["state"] == "loaded" for p in listing["plugins"])


@pytest.mark.lean
def test_prove_decodes_with_fusion_and_traces_the_weights(
    fusion_models: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from malot.testing.prelude_lean import build_prelude_lean

    lean = build_prelude_lean(REPO / "tests" / ".cache" / "lean-4.35")
    monkeypatch.setenv("MALOT_PROVER__MAX_TOKENS", "12")
    out = tmp_path / "run"
    code = main(
        [
            "prove",
            "theorem t (a b : Nat) (h : a = 1) : a + 1 = 2 := by",
            "--model",
            str(fusion_models["large"]),
            "--fuse-expert",
            str(fusion_models["expert"]),
            "--fuse-base",
            str(fusion_models["base"]),
            "--lean",
            str(lean),
            "--strategy",
            "whole-proof",
            "--samples",
            "2",
            "--rounds",
            "0",
            "--out",
            str(out),
            "--json",
        ]
    )
    assert code == 1  # random tiny models do not prove it, but decoding ran through fusion
    trace = read_trace(out / "trace.jsonl")
    notes = [n["fusion"] for g in trace.groups.values() for n in g.notes if "fusion" in n]
    assert len(notes) == 1
    fusion = notes[0]
    assert fusion["fusion_steps"] >= 12 and fusion["fusion_experts"] == [str(fusion_models["expert"])]
    weights = [w for step in fusion["fusion_weights"] for row in step for w in row]
    assert weights and all(0.0 <= w <= 2.0 for w in weights)


def test_prove_fusion_without_base_is_a_clear_error(fusion_models: dict[str, Any], tmp_path: Path) -> None:
    code = main(
        [
            "prove",
            "theorem t : True := by",
            "--model",
            str(fusion_models["large"]),
            "--fuse-expert",
            "x",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 2


def test_fusion_speed_benchmark_writes_its_figures(
    fusion_models: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "speed.json"
    models = Path(fusion_models["large"]).parent
    argv = ["fusion_speed.py", "--quick", "--tokens", "4", "--repeats", "1", "--batch", "2"]
    monkeypatch.setattr(sys, "argv", [*argv, "--models", str(models), "--out", str(out)])
    runpy.run_path(str(PLUGIN / "benchmarks" / "fusion_speed.py"), run_name="__main__")  # in-process: no re-import
    data = json.loads(out.read_text())
    assert set(data) == {"fused_tokens_per_second", "unfused_tokens_per_second", "forward_passes_ratio", "details"}
    assert data["forward_passes_ratio"] == 3.0  # large + expert + base, one cached pass each per step
    assert data["fused_tokens_per_second"] > 0 and data["unfused_tokens_per_second"] > 0
