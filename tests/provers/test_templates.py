"""Prompt templates: each family's rendered text for one problem is pinned by a golden file.

Regenerate the golden files after an intended template change with ``MALOT_UPDATE_GOLDEN=1 pytest
tests/provers/test_templates.py`` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from malot.errors import ConfigError
from malot.llm import ChatMessage, InfillPrompt
from malot.provers import Problem, available_templates, load_template
from malot.provers.demos import load_demo_file, pick_demonstrations
from malot.provers.feedback import format_errors, format_history, format_thought, mark_errors

GOLDEN = Path(__file__).resolve().parent / "golden"
PROBLEM = Problem.from_minif2f("mathd_algebra_10")
DEMO = next(d for d in load_demo_file() if d["name"] == "mathd_algebra_182")
PREVIOUS = PROBLEM.header + PROBLEM.statement + "\n  norm_num [abs_of_nonneg]\n  linarith"
MESSAGES = [
    {"line": 9, "column": 2, "data": "linarith failed to find a contradiction", "goal": None},
    {"line": 7, "column": 79, "data": "unsolved goals\n⊢ |(120:ℝ) / 100 * 30 - 130 / 100 * 20| = 10", "goal": None},
]
MESSAGES[1]["goal"] = "⊢ |(120:ℝ) / 100 * 30 - 130 / 100 * 20| = 10"
FEEDBACK = {
    "previous_proof": mark_errors(PREVIOUS, MESSAGES),
    "previous_thought": format_thought("Compute both percentages, then the absolute value."),
    "errors": format_errors(MESSAGES),
    "history": format_history([{"summary": "line 8, column 2: ring failed", "proof": PROBLEM.statement + "\n  ring"}]),
}


def _check(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("MALOT_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"missing golden file {path}; run with MALOT_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


def test_every_family_has_a_template() -> None:
    assert set(available_templates()) >= {
        "lot-solver",
        "deepseek-prover-v1.5",
        "deepseek-prover-v2",
        "goedel-prover-v2",
        "kimina-prover",
        "codegen2-infill",
    }


@pytest.mark.parametrize("name", available_templates())
def test_prover_prompt_golden(name: str) -> None:
    template = load_template(name)
    rendered = template.render_prover(PROBLEM.model_dump(), [DEMO])
    text = rendered.golden_text()
    if template.kind == "lot":
        text += "\n--- output prefix ---\n" + template.render_output_prefix(PROBLEM.model_dump())
    _check(f"{name}.prover.txt", text)
    assert PROBLEM.statement in text
    request_prompt = rendered.to_request_prompt()
    if template.kind == "chat":
        assert all(isinstance(m, ChatMessage) for m in request_prompt)
    elif template.kind == "infill":
        assert isinstance(request_prompt, InfillPrompt) and request_prompt.prefix.endswith(PROBLEM.statement + "\n")
    else:
        assert isinstance(request_prompt, str)


@pytest.mark.parametrize("name", [n for n in available_templates() if load_template(n).supports_correction])
def test_corrector_prompt_golden(name: str) -> None:
    template = load_template(name)
    text = template.render_corrector(PROBLEM.model_dump(), FEEDBACK).golden_text()
    _check(f"{name}.corrector.txt", text)
    assert "line 9, column 2" in text and "-- error (line 9, column 2): linarith failed" in text
    assert "goal state at the error:\n⊢ |(120:ℝ)" in text


def test_lot_prompt_layout() -> None:
    template = load_template("lot-solver")
    rendered = template.render_prover(PROBLEM.model_dump(), [DEMO])
    assert isinstance(rendered.prompt, str)
    assert rendered.prompt.startswith("<｜begin▁of▁sentence｜>")  # the model's own BOS, written by the template
    assert rendered.prompt.rstrip().endswith("can be proved by")
    assert rendered.stop == ("</Thought>",)
    prefix = template.render_output_prefix(PROBLEM.model_dump())
    assert prefix.startswith("\n</Thought>\n\n<Output>\n```lean4\n" + PROBLEM.header)
    assert prefix.endswith(PROBLEM.statement + "\n")


def test_whole_proof_prefill_is_the_open_block() -> None:
    rendered = load_template("deepseek-prover-v1.5").render_prover(PROBLEM.model_dump())
    assert isinstance(rendered.prompt, str)
    opening = "<｜begin▁of▁sentence｜>Complete the following Lean 4 code:\n\n"  # raw text: the model's BOS
    assert rendered.prompt.startswith(opening + "```lean4\n")
    assert rendered.prefill == rendered.prompt[len(opening) :]
    assert rendered.stop == ("```",)
    assert "/-- What is the positive difference" in rendered.prompt


def test_infill_template_cannot_correct() -> None:
    with pytest.raises(ConfigError, match="no corrector prompt"):
        load_template("codegen2-infill").render_corrector(PROBLEM.model_dump(), FEEDBACK)


def test_unknown_template_suggests_a_name() -> None:
    with pytest.raises(ConfigError, match="did you mean 'lot-solver'"):
        load_template("lot-solvr")


def test_template_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text('name = "mine"\nfamily = "Mine"\nkind = "completion"\nprompt = "```lean4\\n{{statement}}\\n"\n')
    rendered = load_template(str(path)).render_prover(PROBLEM.model_dump())
    assert rendered.prefill == rendered.prompt


def test_random_demonstrations_never_include_the_problem() -> None:
    target = Problem.from_statement(DEMO["statement"], name="mathd_algebra_182")
    for seed in range(20):
        demos = pick_demonstrations(target, 5, seed=seed)
        assert len(demos) == 5 and all(d["name"] != "mathd_algebra_182" for d in demos)
    assert pick_demonstrations(target, 3, seed=1) == pick_demonstrations(target, 3, seed=1)


def test_demonstrations_from_a_retriever() -> None:
    class Retriever:
        def __init__(self) -> None:
            self.queries: list[object] = []

        def retrieve(self, query: object, k: int) -> list[object]:
            self.queries.append(query)
            from malot.retrieval import Demonstration

            return [
                Demonstration(name=f"d{i}", statement=f"theorem d{i} : True := by", proof="trivial") for i in range(k)
            ]

    retriever = Retriever()
    demos = pick_demonstrations(PROBLEM, 2, retriever=retriever)
    assert [d["name"] for d in demos] == ["d1", "d0"]  # the most relevant last, next to the problem
    assert getattr(retriever.queries[0], "name", None) == PROBLEM.name
