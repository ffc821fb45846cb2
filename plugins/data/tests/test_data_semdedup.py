"""SemDeDup and Adapt-∞ selection: exact budgets, duplicates removed first, constant scorers never chosen."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from malot_data.select_instructions import adapt_inf_select, ccs_sample, choose_scorer, gradient_embeddings
from malot_data.semdedup import duplicate_scores, semdedup_keep

from malot.errors import ToolError
from malot.tools import tool_of
from malot.tools.registry import ToolRegistry


def _with_duplicates(seed: int = 0) -> tuple[np.ndarray, list[int]]:
    """40 distinct random unit vectors plus 8 planted near-copies (indices 40..47) of the first 8."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(40, 16))
    copies = base[:8] + 1e-3 * rng.normal(size=(8, 16))
    return np.vstack([base, copies]), list(range(40, 48))


@pytest.mark.parametrize("clusters", [1, 4])
def test_budget_is_exact_and_duplicates_go_first(clusters: int) -> None:
    emb, _ = _with_duplicates()
    scores = duplicate_scores(emb, clusters)
    for budget in (47, 44, 40, 30, 0):
        kept = semdedup_keep(scores, budget=budget)
        assert len(kept) == budget == len(set(kept))
        if budget >= 40:  # only members of planted pairs are removed, one of each pair at most
            removed = set(range(48)) - set(kept)
            assert all(i % 40 < 8 for i in removed)
            assert all(not ({i, i + 40} <= removed) for i in range(8))
        if budget == 40:  # exactly one copy of each pair is gone, every distinct vector stays
            assert sorted(i % 40 for i in set(range(48)) - set(kept)) == list(range(8))


def test_threshold_mode_removes_exactly_the_pairs_above_one_minus_eps() -> None:
    emb, _ = _with_duplicates(1)
    scores = duplicate_scores(emb, 1)
    kept = semdedup_keep(scores, eps=0.01)
    assert len(kept) == 40 and sorted(i % 40 for i in set(range(48)) - set(kept)) == list(range(8))
    assert semdedup_keep(scores, eps=0.0) == list(range(48))  # cosine never exceeds 1
    assert max(scores.score) <= 1.0 + 1e-9
    # the copy kept is the least prototypical one: its partner records it as the duplicate
    for i in set(range(48)) - set(kept):
        assert scores.duplicate_of[i] % 40 == i % 40 and scores.duplicate_of[i] != i


def test_semdedup_bad_input() -> None:
    with pytest.raises(ToolError, match="NaN"):
        duplicate_scores(np.array([[np.nan, 1.0], [1.0, 0.0]]), 1)
    with pytest.raises(ToolError, match="zeros"):
        duplicate_scores(np.zeros((3, 2)), 1)
    with pytest.raises(ToolError, match="clusters"):
        duplicate_scores(np.eye(3), 5)
    with pytest.raises(ToolError, match="exactly one"):
        semdedup_keep(duplicate_scores(np.eye(3), 1))


def _pool(seed: int = 0, n: int = 120) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    h = rng.normal(size=(n, 8))
    logits = h @ rng.normal(size=(8, 4))
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    return h, probs, rng.integers(0, 4, n)


@pytest.mark.parametrize("budget", [1, 7, 33, 120])
def test_adapt_inf_budget_is_exact(budget: int) -> None:
    h, p, y = _pool()
    sel = adapt_inf_select(h, p, y, budget, clusters=5, dim=16)
    assert len(sel.indices) == budget == len(set(sel.indices))
    assert sum(c.budget for c in sel.clusters) == budget and sum(c.size for c in sel.clusters) == 120


def test_constant_scorer_is_never_chosen() -> None:
    h, p, y = _pool(2)
    sel = adapt_inf_select(h, p, y, 30, clusters=4, dim=16, extra_scores={"constant": np.full(120, 3.0)})
    assert all(c.scorer != "constant" and c.histogram_entropy["constant"] == 0.0 for c in sel.clusters)
    name, ents = choose_scorer({"flat": np.ones(10), "spread": np.arange(10.0)}, np.arange(10))
    assert name == "spread" and ents["spread"] == pytest.approx(np.log(10))


def test_dedup_removes_duplicates_before_selection() -> None:
    h, p, y = _pool(3, 60)
    h = np.vstack([h, h[:5]])
    p, y = np.vstack([p, p[:5]]), np.concatenate([y, y[:5]])
    sel = adapt_inf_select(h, p, y, 20, clusters=3, dim=8, dedup_eps=1e-6)
    assert len(sel.deduplicated) == 5 and not set(sel.deduplicated) & set(sel.indices)
    assert sorted(i % 60 for i in sel.deduplicated) == list(range(5))


def test_gradient_embedding_is_the_last_layer_gradient_direction() -> None:
    import torch

    h, p, y = _pool(4, 6)
    emb = gradient_embeddings(h, p, y, dim=1000)  # no projection: dim exceeds 4*8
    for i in range(6):
        w = torch.zeros(4, 8, dtype=torch.float64, requires_grad=True)
        logits = torch.log(torch.tensor(p[i])) + w @ torch.tensor(h[i])
        torch.nn.functional.cross_entropy(logits[None], torch.tensor([y[i]])).backward()
        g = w.grad.numpy().reshape(-1)
        assert np.allclose(emb[i], g / np.linalg.norm(g), atol=1e-6)


def test_ccs_covers_every_stratum() -> None:
    values = np.concatenate([np.zeros(90), np.linspace(1, 10, 10)])
    picked = ccs_sample(values, 20, strata=10)
    assert len(picked) == 20 and sum(1 for i in picked if i >= 90) == 10  # sparse strata filled completely


def test_select_instructions_bad_input() -> None:
    h, p, y = _pool()
    with pytest.raises(ToolError, match="rows"):
        adapt_inf_select(h[:10], p, y, 5)
    with pytest.raises(ToolError, match="budget"):
        adapt_inf_select(h, p, y, 500)
    with pytest.raises(ToolError, match="labels"):
        adapt_inf_select(h, p, y + 10, 5)


def test_tools_run_through_the_registry(tmp_path: Path) -> None:
    import malot_data.select_instructions as sel_module
    import malot_data.semdedup as dedup_module

    registry = ToolRegistry()
    for fn in (sel_module.select_instructions, dedup_module.semdedup):
        t = tool_of(fn)
        assert t is not None and t.metadata.family == "data"
        registry.register(t)
    h, p, y = _pool()
    np.savez(tmp_path / "pool.npz", h=h, logits=np.log(p), y=y)
    out = registry.run_sync(
        "select_instructions",
        {
            "features": f"{tmp_path}/pool.npz:h",
            "outputs": f"{tmp_path}/pool.npz:logits",
            "labels": f"{tmp_path}/pool.npz:y",
            "budget": 25,
            "clusters": 3,
            "dim": 16,
        },
    ).model_dump()
    assert out["selected"] == 25 and len(out["clusters"]) == 3
    emb, _ = _with_duplicates()
    np.save(tmp_path / "emb.npy", emb)
    dedup = registry.run_sync("semdedup", {"embeddings": str(tmp_path / "emb.npy"), "budget": 40}).model_dump()
    assert dedup["kept"] == 40 and {r["index"] % 40 for r in dedup["removed"]} == set(range(8))
    with pytest.raises(ToolError, match="exactly one of eps"):
        registry.run_sync("semdedup", {"embeddings": str(tmp_path / "emb.npy")})
    (tmp_path / "bad.jsonl").write_text(json.dumps({"x": 1}) + "\n", encoding="utf-8")
    with pytest.raises(ToolError, match="lacks the field"):
        registry.run_sync("semdedup", {"texts": str(tmp_path / "bad.jsonl"), "eps": 0.1})


@pytest.mark.slow
def test_semdedup_on_shipped_demonstrations_removes_a_planted_near_copy(tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    import malot_data.semdedup as dedup_module

    from malot.data import DEMOS_JSONL

    records = [json.loads(line) for line in DEMOS_JSONL.read_text(encoding="utf-8").splitlines()[:6]]
    copy = dict(records[2], name=records[2]["name"] + "_dup")
    copy["formal_statement"] = copy["formal_statement"].replace(records[2]["name"], copy["name"])
    lines = [json.dumps(r) for r in [*records, copy]]
    (tmp_path / "demos.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    registry = ToolRegistry()
    t = tool_of(dedup_module.semdedup)
    assert t is not None
    registry.register(t)
    out = registry.run_sync(
        "semdedup",
        {
            "texts": str(tmp_path / "demos.jsonl"),
            "fields": ["formal_statement", "formal_proof"],
            "id_field": "name",
            "budget": 6,
        },
    ).model_dump()
    assert out["kept"] == 6 and len(out["removed"]) == 1
    removed = out["removed"][0]
    assert {removed["id"], removed["duplicate_of_id"]} == {records[2]["name"], copy["name"]}
    assert removed["similarity"] > 0.95


def test_oversized_inputs_are_refused_with_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    import malot_data.select_instructions as sel_module
    import malot_data.semdedup as dedup_module

    monkeypatch.setattr(dedup_module, "MAX_CLUSTER", 10)
    with pytest.raises(ToolError, match="raise clusters"):
        duplicate_scores(np.random.default_rng(0).normal(size=(20, 3)), 1)
    monkeypatch.setattr(sel_module, "MAX_GRADIENT_WIDTH", 8)
    h, p, y = _pool()
    with pytest.raises(ToolError, match="columns per example"):
        gradient_embeddings(h, p, y)
