"""Graph helpers shared by the graph tools: reading graphs, topological statistics, step-function graphons.

A graph is ``{"nodes": n, "edges": [[u, v], ...]}`` (undirected, nodes ``0..n-1``); a dataset is a list of them
(inline, or a ``.jsonl`` file with one graph per line). Graph statistics use networkx.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from malot.errors import ToolError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["adjacency", "load_graphs", "step_graphon", "topology_features"]


def adjacency(graph: Any, name: str = "graph") -> NDArray[np.float64]:
    """The symmetric 0/1 adjacency matrix of one graph record (self-loops dropped)."""
    import numpy as np

    if not isinstance(graph, dict) or "nodes" not in graph or "edges" not in graph:
        raise ToolError(
            f"{name} must be an object with 'nodes' and 'edges'", hint='e.g. {"nodes": 3, "edges": [[0, 1]]}'
        )
    n = int(graph["nodes"])
    if n < 2:
        raise ToolError(f"{name} needs at least 2 nodes, got {n}")
    a = np.zeros((n, n))
    for edge in graph["edges"]:
        u, v = int(edge[0]), int(edge[1])
        if not (0 <= u < n and 0 <= v < n):
            raise ToolError(f"{name}: edge ({u}, {v}) names a node outside 0..{n - 1}")
        if u != v:
            a[u, v] = a[v, u] = 1.0
    return a


def load_graphs(value: Any, name: str) -> list[NDArray[np.float64]]:
    """Adjacency matrices of a dataset given inline (a list of graph records) or as a ``.jsonl`` file."""
    records: list[Any]
    if isinstance(value, str):
        path = Path(value)
        if not path.is_file():
            raise ToolError(f"{name}: file {path} does not exist", hint="one graph object per line (.jsonl)")
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        records = list(value or [])
    if not records:
        raise ToolError(f"{name} holds no graphs", hint="give at least one graph")
    return [adjacency(g, f"{name}[{i}]") for i, g in enumerate(records)]


def topology_features(a: NDArray[np.float64]) -> NDArray[np.float64]:
    """Density, mean clustering, degree assortativity, normalised degree spread and log size of one graph."""
    import networkx as nx
    import numpy as np

    g = nx.from_numpy_array(a)
    n = a.shape[0]
    degrees = a.sum(axis=1)
    with np.errstate(all="ignore"):
        assort = nx.degree_assortativity_coefficient(g) if g.number_of_edges() > 1 else 0.0
    assort = 0.0 if not np.isfinite(assort) else float(assort)
    spread = float(degrees.std() / (degrees.mean() + 1e-9))
    return np.array([nx.density(g), nx.average_clustering(g), assort, spread, np.log(n)])


def step_graphon(graphs: list[NDArray[np.float64]], resolution: int) -> NDArray[np.float64]:
    """A step-function graphon estimate (sort-and-smooth): nodes sorted by degree, adjacency averaged over an
    ``r x r`` grid of equal-measure blocks, then over the graphs."""
    import numpy as np

    total = np.zeros((resolution, resolution))
    for a in graphs:
        n = a.shape[0]
        order = np.argsort(-a.sum(axis=1), kind="stable")
        sorted_a = a[np.ix_(order, order)]
        block = np.minimum((np.arange(n) * resolution) // n, resolution - 1)
        member = np.zeros((n, resolution))
        member[np.arange(n), block] = 1.0
        # block weights: the mean over node pairs in each block pair (diagonal pairs included)
        counts = member.sum(axis=0)
        sums = member.T @ sorted_a @ member
        pairs = np.outer(counts, counts)
        total += np.divide(sums, pairs, out=np.zeros_like(sums), where=pairs > 0)
    return total / len(graphs)
