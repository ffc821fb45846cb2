"""MA-LoT and whole-proof against real (tiny, random-weight) transformers models on CPU and the real Lean 4.35.

The models cannot prove anything; these tests check that the two-pass long-CoT control, the corrector round and the
infill template work against a real generation engine (stop strings, token limits, infill sentinels) end to end.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from malot.config import Settings
from malot.provers import Problem
from malot.testing.tiny_models import build_tiny_models

# a short prelude header: the tiny models have a 1024-token context
PROBLEM = Problem.from_statement(
    "prelude\ninductive MyNat where\n  | zero : MyNat\n  | succ : MyNat → MyNat\n"
    "theorem imp_trans (p q r : Prop) (hpq : p → q) (hqr : q → r) : p → r :=",
    informal="Implication is transitive.",
)
CACHE = Path(__file__).resolve().parents[1] / ".cache"

pytestmark = [pytest.mark.lean, pytest.mark.slow]


@pytest.fixture(scope="module")
def tiny_models() -> dict[str, Path]:
    return build_tiny_models(CACHE / "tiny-models")


def _settings(model: Path, lean: Path, **prover: object) -> Settings:
    return Settings.model_validate(
        {
            "llm": {"model": str(model), "backend": "hf", "device": "cpu"},
            "lean": {"lean_path": str(lean), "sandbox": "off"},
            "prover": {"samples": 1, "max_tokens": 24, "seed": 0, **prover},
            "retrieval": {"retriever": "none"},
        }
    )


async def test_ma_lot_with_a_real_engine(tiny_models: dict[str, Path], lean_exe: Path, tmp_path: Path) -> None:
    from malot.provers import Prover, trace_summary

    # the LoT-Solver prompt does not fit the tiny model's context: a short template of the same (lot) kind
    template = tmp_path / "short-lot.toml"
    template.write_text(
        'name = "short-lot"\nfamily = "test"\nkind = "lot"\nstop = ["```"]\nthought_stop = ["</Thought>"]\n'
        'prompt = "{{statement}}\\n<Thought>\\n"\n'
        'output_prefix = "\\n</Thought>\\n<Output>\\n```lean4\\n{{statement}}\\n"\n'
        'corrector = "{{statement}}\\n{{errors}}\\n<Thought>\\n"\n',
        encoding="utf-8",
    )
    settings = _settings(tiny_models["llama"], lean_exe, rounds=1, thought_share=0.5, template=str(template))
    async with Prover(settings, trace=tmp_path / "trace.jsonl") as prover:
        result = await prover.prove(PROBLEM)
        llm = prover.llm
    assert llm is not None and prover.llm is None  # the prover built the transformers model and closed it
    assert not result.proved
    assert result.attempts[0].verdicts == ["failed", "failed"]  # prover, then one corrector round
    assert result.usage["samples"] == 2 and result.usage["tokens_out"] > 0
    assert result.summary["llm_s"] > 0
    steps = _steps(tmp_path / "trace.jsonl")
    prover_notes = next(n for s in steps if s["node"] == "prover" for n in s["notes"] if "thought_tokens" in n)
    assert 0 < prover_notes["thought_tokens"] <= 12  # pass 1 is capped at thought_share of max_tokens
    assert trace_summary(tmp_path / "trace.jsonl")["attempts"] == 1


async def test_whole_proof_infill_with_codegen(tiny_models: dict[str, Path], lean_exe: Path) -> None:
    from malot.provers import Prover

    settings = _settings(tiny_models["codegen"], lean_exe, strategy="whole-proof", template="codegen2-infill")
    async with Prover(settings) as prover:
        result = await prover.prove(PROBLEM)
    assert not result.proved and result.template == "codegen2-infill"
    assert len(result.attempts) == 1 and result.attempts[0].verdicts == ["failed"]


def _steps(path: Path) -> list[dict[str, Any]]:
    events = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [e for e in events if e["type"] == "step"]
