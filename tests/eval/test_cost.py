"""Cost per problem: a scripted decompose evaluation whose tokens and prices give a hand-computed cost."""

from __future__ import annotations

import asyncio
import json
import statistics
from pathlib import Path
from typing import Any

import pytest

from malot.config import Settings, load_settings
from malot.eval.cost import cost_summary, price_for, problem_costs, token_cost
from malot.eval.datasets import load_dataset
from malot.eval.prover_solver import prover_solver
from malot.eval.report import render_markdown, summarize
from malot.eval.runner import EvalRunner, LocalBackend
from malot.eval.runs import create_run
from malot.llm import ScriptedLLM

from ..provers.decompose_script import HEADER, THEOREMS, DecomposeModel, settings_data

PROMPT_PRICE, COMPLETION_PRICE = 2.0, 10.0


def test_prices_are_looked_up_by_name_path_part_and_default() -> None:
    pricing = {"org/model-7b": {"prompt": 1.0, "completion": 2.0}, "default": {"prompt": 0.5, "completion": 0.5}}
    assert price_for("org/model-7b", pricing) == (1.0, 2.0)
    assert price_for("/models/model-7b", {"model-7b": {"prompt": 3.0, "completion": 4.0}}) == (3.0, 4.0)
    assert price_for("other", pricing) == (0.5, 0.5)
    assert price_for("other", {}) is None
    assert token_cost(1_000_000, 500_000, (2.0, 10.0)) == pytest.approx(7.0)
    assert cost_summary([], priced=False)["cost"]["total"] is None


@pytest.mark.lean
@pytest.mark.slow
def test_a_scripted_decompose_run_reports_the_hand_computed_cost(tmp_path: Path, lean_exe: Path) -> None:
    dataset_file = tmp_path / "three.jsonl"
    names = ["and_swap3", "or_and", "chain"]  # chain needs depth 1, which this run does not allow: unsolved
    rows = [{"name": n, "split": "test", "header": HEADER, "formal_statement": THEOREMS[n][0]} for n in names]
    dataset_file.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    base = load_settings(
        overrides={"llm.model": "scripted", "lean.lean_path": str(lean_exe), "lean.backend": "file"}
    ).model_dump(exclude_unset=True)
    data = settings_data(max_depth=0)
    settings = Settings.model_validate(
        {
            **base,
            **data,
            "prover": {**data["prover"], "samples": 1},
            "pricing": {"scripted": {"prompt": PROMPT_PRICE, "completion": COMPLETION_PRICE}},
        }
    )
    store = create_run(load_dataset(dataset_file), settings, tmp_path / "runs")
    model = DecomposeModel()
    llm = ScriptedLLM(model)

    def factory(s: Any) -> Any:
        return prover_solver(s, llm=llm)

    result = asyncio.run(EvalRunner(store, settings, LocalBackend(factory, jobs=1)).run())
    assert result.solved == 2
    summary = summarize(store)
    cost = summary["cost"]
    expected_total = (model.prompt_tokens * PROMPT_PRICE + model.completion_tokens * COMPLETION_PRICE) / 1e6
    per = cost["per_problem"]
    assert sum(p["tokens_in"] for p in per.values()) == model.prompt_tokens
    assert sum(p["tokens_out"] for p in per.values()) == model.completion_tokens
    assert sum(p["llm_calls"] for p in per.values()) == len(llm.requests)
    assert cost["summary"]["cost"]["total"] == pytest.approx(expected_total)
    costs = [p["cost"] for p in per.values()]
    assert cost["summary"]["cost"]["mean_per_problem"] == pytest.approx(expected_total / 3)
    assert cost["summary"]["cost"]["median_per_problem"] == pytest.approx(statistics.median(costs))
    assert cost["summary"]["cost"]["per_solved"] == pytest.approx(expected_total / 2)
    assert cost["summary"]["score"] == pytest.approx(2 / 3)
    assert all(p["lean_cpu_s"] > 0 and p["wall_s"] > 0 for p in per.values())
    markdown = render_markdown(summary)
    assert "## Cost per problem" in markdown and f"{expected_total / 2:.4f}" in markdown
    store.close()


def test_unpriced_models_show_no_money() -> None:
    class Row:
        def __init__(self, name: str, solved: bool) -> None:
            self.name, self.solved, self.wall_s, self.status = name, solved, 1.0, "done"

    attempts = [
        {"problem": "a", "tokens_in": 10, "tokens_out": 5, "lean_cpu_s": 0.5, "flags": {"llm_calls": 2}},
        {"problem": "b", "tokens_in": 4, "tokens_out": 0, "lean_cpu_s": 0.1, "flags": {}},
    ]
    costs = problem_costs(attempts, [Row("a", True), Row("b", False)], model="m", pricing={})
    summary = cost_summary(costs, priced=False)
    assert summary["cost"]["total"] is None
    assert summary["llm_calls"]["total"] == 3 and summary["tokens_in"]["per_solved"] == 14
