"""W2PGNN: graphs from one basis get α ≈ that basis and a higher feasibility; graphon estimation; tool errors."""

from __future__ import annotations

from functools import cache

import networkx as nx
import numpy as np
import pytest
from malot_select.core.graphs import adjacency, step_graphon
from malot_select.w2pgnn import graphon_bases, pretrain_feasibility, pretrain_feasibility_tool

from malot.errors import ToolError
from malot.tools import ToolRegistry


def _sbm(seed: int) -> np.ndarray:
    return nx.to_numpy_array(nx.stochastic_block_model([8, 8], [[0.9, 0.05], [0.05, 0.9]], seed=seed))


def _er(seed: int) -> np.ndarray:
    return nx.to_numpy_array(nx.erdos_renyi_graph(16, 0.15, seed=seed))


def _ba(seed: int) -> np.ndarray:
    return nx.to_numpy_array(nx.barabasi_albert_graph(16, 4, seed=seed))


@cache
def _pretrain() -> list[np.ndarray]:
    return [_sbm(i) for i in range(5)] + [_er(100 + i) for i in range(5)]


def test_step_graphon_of_a_complete_bipartite_graph_is_exact() -> None:
    a = nx.to_numpy_array(nx.complete_bipartite_graph(4, 4))
    graphon = step_graphon([a], 2)
    # all nodes have degree 4: stable sort keeps the two sides in the two blocks
    assert np.allclose(graphon, [[0.0, 1.0], [1.0, 0.0]])


@pytest.mark.slow
def test_topology_clustering_separates_the_generators() -> None:
    _, groups = graphon_bases(_pretrain(), n_bases=2)
    assert len(set(groups[:5])) == 1 and len(set(groups[5:])) == 1 and groups[0] != groups[5]


@pytest.mark.slow
def test_graphs_from_one_basis_get_its_weight_and_a_higher_feasibility() -> None:
    downstream = [_sbm(50 + i) for i in range(3)]
    groups = [0] * 5 + [1] * 5
    matched = pretrain_feasibility(_pretrain(), downstream, groups=groups, resolution=8, steps=10)
    assert matched.alpha[0] > 0.95
    unrelated = [_er(200 + i) for i in range(5)] + [_ba(300 + i) for i in range(5)]
    mismatched = pretrain_feasibility(unrelated, downstream, groups=groups, resolution=8, steps=10)
    assert matched.feasibility > mismatched.feasibility
    assert matched.history[-1] <= matched.history[0] + 1e-12


def test_tool_through_the_registry_with_domains() -> None:
    def record(a: np.ndarray) -> dict[str, object]:
        return {"nodes": a.shape[0], "edges": np.argwhere(np.triu(a) > 0).tolist()}

    registry = ToolRegistry()
    registry.register(pretrain_feasibility_tool)
    out = registry.run_sync(
        "pretrain_feasibility",
        {
            "pretrain": [record(a) for a in _pretrain()],
            "downstream": [record(_er(400)), record(_er(401))],
            "groups": [0] * 5 + [1] * 5,
            "resolution": 8,
            "steps": 5,
        },
        isolation="inline",
    ).model_dump()
    assert out["alpha"][1] > out["alpha"][0] and out["feasibility"] == pytest.approx(-out["distance"])
    per_graph = registry.run_sync(
        "pretrain_feasibility",
        {
            "pretrain": [record(a) for a in _pretrain()],
            "downstream": [record(_er(400)), record(_er(401))],
            "groups": [0] * 5 + [1] * 5,
            "resolution": 8,
            "steps": 5,
            "downstream_as": "graphs",
        },
        isolation="inline",
    ).model_dump()
    assert per_graph["alpha"][1] > per_graph["alpha"][0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"pretrain": [], "downstream": [{"nodes": 3, "edges": []}]}, "holds no graphs"),
        ({"pretrain": [{"nodes": 3}], "downstream": [{"nodes": 3, "edges": []}]}, "'nodes' and 'edges'"),
        ({"pretrain": [{"nodes": 3, "edges": [[0, 7]]}], "downstream": [{"nodes": 3, "edges": []}]}, "outside"),
        ({"pretrain": [{"nodes": 1, "edges": []}], "downstream": [{"nodes": 3, "edges": []}]}, "at least 2"),
        (
            {"pretrain": [{"nodes": 3, "edges": []}], "downstream": [{"nodes": 3, "edges": []}], "groups": [0, 1]},
            "2 group labels for 1 graphs",
        ),
        ({"pretrain": "missing.jsonl", "downstream": [{"nodes": 3, "edges": []}]}, "does not exist"),
    ],
)
def test_tool_rejects_bad_input(args: dict[str, object], message: str) -> None:
    registry = ToolRegistry()
    registry.register(pretrain_feasibility_tool)
    with pytest.raises(ToolError, match=message):
        registry.run_sync("pretrain_feasibility", args, isolation="inline")


def test_adjacency_is_symmetric_without_self_loops() -> None:
    a = adjacency({"nodes": 3, "edges": [[0, 1], [2, 2]]})
    assert a.tolist() == [[0, 1, 0], [1, 0, 0], [0, 0, 0]]
