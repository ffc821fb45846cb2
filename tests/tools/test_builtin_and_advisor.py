"""malot's own tools (lean_check on the real Lean 4.35 fixture, retrieve_demos, recommend_tools) and the advisor."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import pytest

from malot.tools import get_registry, plugin_statuses
from malot.tools.advisor import advisor_tags, recommend

SUITE = Path(__file__).resolve().parents[1] / "data" / "prelude_suite" / "prelude_suite.jsonl"


def suite_record(name: str) -> dict[str, str]:
    for line in SUITE.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record["name"] == name:
            return dict(record)
    raise KeyError(name)


def test_builtin_tools_come_from_the_malot_entry_point() -> None:
    points = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="malot.tools")}
    assert points.get("malot") == "malot.tools.builtin"
    registry = get_registry()
    for name in ("lean_check", "retrieve_demos", "prove", "recommend_tools"):
        assert registry.get(name).metadata.plugin == "malot"


def test_every_registered_tool_carries_tags_with_family_and_needs() -> None:
    registry = get_registry()
    assert len(registry) >= 20
    for t in registry.list():
        tags = advisor_tags(t)
        assert t.metadata.tags, f"{t.name} declares no tags"
        assert t.metadata.family and t.metadata.family in tags
    fisher = advisor_tags(registry.get("fisher_merge"))
    assert "setting:merging" in fisher and "needs:models" in fisher and "heavy" in fisher
    assert "setting:cross-lingual" in advisor_tags(registry.get("clp_transfer"))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("merge two fine-tuned checkpoints weighted by their Fisher information", "fisher_merge"),
        ("initialise a model for a new language's vocabulary", "clp_transfer"),
        ("check whether my Lean proof is accepted", "lean_check"),
        ("find solved example problems similar to my theorem", "retrieve_demos"),
    ],
)
def test_recommendations_rank_the_fitting_tool_first(query: str, expected: str) -> None:
    found = recommend(query, k=5)
    assert found and found[0].name == expected, [r.name for r in found]


@pytest.mark.slow
def test_dense_ranking_with_the_offline_minilm() -> None:
    found = recommend("merge two fine-tuned checkpoints weighted by their Fisher information", k=3, method="dense")
    assert found[0].name == "fisher_merge" and len(found) == 3
    assert found[0].score > found[1].score > found[2].score


def test_every_recommendation_resolves_to_a_registered_entry_point() -> None:
    points = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="malot.tools")}
    loaded = {s.name: set(s.tools) for s in plugin_statuses() if s.state == "loaded"}
    for query in ("merge models", "few-shot transfer", "decoding with experts", "retrieval", "zero-shot"):
        for r in recommend(query, k=10):
            assert r.entry_point == f"{r.plugin} = {points[r.plugin]}"
            assert r.name in loaded[r.plugin]
    assert [s.score for s in recommend("merge models", k=10)] == sorted(
        (s.score for s in recommend("merge models", k=10)), reverse=True
    )


async def test_recommend_tools_and_retrieve_demos_run_as_tools() -> None:
    registry = get_registry()
    out = await registry.run("recommend_tools", {"query": "merge checkpoints", "k": 3})
    names = [c.name for c in out.result]  # type: ignore[attr-defined]
    assert "fisher_merge" in names and len(names) == 3
    demos = await registry.run("retrieve_demos", {"query": "theorem about the sum of two squares", "k": 2})
    assert len(demos.result) == 2 and all(d.statement and d.proof for d in demos.result)  # type: ignore[attr-defined]


@pytest.mark.lean
async def test_lean_check_gives_the_acceptance_verdict_and_errors(
    lean_exe: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MALOT_LEAN__LEAN_PATH", str(lean_exe))
    monkeypatch.setenv("MALOT_LEAN__BACKEND", "file")
    monkeypatch.setenv("MALOT_LEAN__SANDBOX", "off")
    record = suite_record("zero_eq_zero")
    registry = get_registry()
    good = await registry.run("lean_check", {"code": f"{record['header']}{record['statement']}\n  {record['proof']}\n"})
    assert good.accepted and good.status == "ok"  # type: ignore[attr-defined]
    bad = await registry.run(
        "lean_check", {"code": f"{record['header']}{record['statement']}\n  {record['wrong_proof']}\n"}
    )
    assert not bad.accepted and bad.errors and bad.errors[0]["line"]  # type: ignore[attr-defined]


@pytest.mark.lean
async def test_prove_runs_a_sub_prover_with_its_own_budget(
    lean_exe: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MALOT_LEAN__LEAN_PATH", str(lean_exe))
    monkeypatch.setenv("MALOT_LEAN__BACKEND", "file")
    monkeypatch.setenv("MALOT_LEAN__SANDBOX", "off")
    monkeypatch.setenv("MALOT_RETRIEVAL__RETRIEVER", "none")
    record = suite_record("zero_eq_zero")
    script = tmp_path / "model.jsonl"
    wrong = f"```lean4\n{record['statement']}\n  {record['wrong_proof']}\n```"
    right = f"```lean4\n{record['statement']}\n  {record['proof']}\n```"
    script.write_text(json.dumps(wrong) + "\n" + json.dumps(right) + "\n", encoding="utf-8")
    arguments = {"statement": record["header"] + record["statement"], "model": f"script:{script}"}
    out = await get_registry().run("prove", {**arguments, "strategy": "agentic", "samples": 1})
    assert not out.proved and out.samples == 1 and out.lean_checks == 1  # type: ignore[attr-defined]
    out = await get_registry().run("prove", {**arguments, "strategy": "agentic", "rounds": 1})
    assert out.proved and record["proof"] in (out.proof or "")  # type: ignore[attr-defined]
