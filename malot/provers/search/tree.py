"""The search tree: nodes (proof states reached), edges (tactics tried), deduplication and the assembled proof.

Nodes are deduplicated by the normalised pretty-print of their goals (:attr:`malot.lean.session.ProofState.key`):
reaching a known state again adds an edge to the existing node (and keeps the better score) instead of a new node.
:meth:`SearchTree.to_dict` is what goes into the trace (``malot trace show`` draws it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from malot.lean.session import ProofState

__all__ = ["SearchEdge", "SearchNode", "SearchTree", "assemble_proof"]

NodeStatus = Literal["open", "expanded", "proved", "rejected"]


@dataclass(slots=True, eq=False)
class SearchNode:
    """A proof state in the tree: how it was first reached (parent, tactic), its score and depth."""

    id: int
    state: ProofState
    parent: SearchNode | None
    tactic: str | None
    score: float
    depth: int
    status: NodeStatus = "open"
    critic: float = 0.0
    visits: int = 0
    value: float = 0.0
    resumes: int = 0
    resume_value: float = 0.0

    def path(self) -> list[str]:
        """The tactics from the root to this node."""
        out: list[str] = []
        node: SearchNode | None = self
        while node is not None and node.tactic is not None:
            out.append(node.tactic)
            node = node.parent
        return out[::-1]


@dataclass(slots=True)
class SearchEdge:
    """A tactic tried on a node: the node it led to (None on error), its log-probability and error."""

    parent: int
    tactic: str
    logprob: float
    child: int | None = None
    error: str | None = None
    merged: bool = False


@dataclass(slots=True)
class SearchTree:
    """All nodes and edges of one search; ``by_key`` maps normalised goals to their node (deduplication)."""

    nodes: list[SearchNode] = field(default_factory=list)
    edges: list[SearchEdge] = field(default_factory=list)
    by_key: dict[str, SearchNode] = field(default_factory=dict)
    merges: int = 0

    def add_root(self, state: ProofState) -> SearchNode:
        """The root node."""
        node = SearchNode(0, state, None, None, 0.0, 0)
        self.nodes.append(node)
        self.by_key[state.key] = node
        return node

    def add_error(self, parent: SearchNode, tactic: str, logprob: float, error: str) -> None:
        """Record a failed tactic."""
        self.edges.append(SearchEdge(parent.id, tactic, logprob, error=error))

    def add_child(
        self, parent: SearchNode, tactic: str, logprob: float, state: ProofState, score: float
    ) -> tuple[SearchNode, bool]:
        """The node for ``state`` reached from ``parent`` by ``tactic``, and whether it is new.

        A state whose key is known (and not closed) is merged into the existing node; if the new path scores
        better and the node is still open, the node takes the better path and score.
        """
        known = self.by_key.get(state.key) if state.goals else None
        if known is not None:
            self.merges += 1
            self.edges.append(SearchEdge(parent.id, tactic, logprob, child=known.id, merged=True))
            if score > known.score and known.status == "open" and not _is_ancestor(known, parent):
                known.parent, known.tactic, known.score, known.depth = parent, tactic, score, parent.depth + 1
            return known, False
        node = SearchNode(len(self.nodes), state, parent, tactic, score, parent.depth + 1)
        self.nodes.append(node)
        if state.goals:
            self.by_key[state.key] = node
        self.edges.append(SearchEdge(parent.id, tactic, logprob, child=node.id))
        return node, True

    @property
    def open_nodes(self) -> int:
        """Nodes not yet expanded."""
        return sum(1 for n in self.nodes if n.status == "open" and n.state.goals)

    def to_dict(self, *, max_nodes: int = 2000, max_goal_chars: int = 300) -> dict[str, Any]:
        """A JSON-ready view for the trace (goals shortened, at most ``max_nodes`` nodes)."""
        nodes = [
            {
                "id": n.id,
                "parent": n.parent.id if n.parent is not None else None,
                "tactic": n.tactic,
                "score": round(n.score, 4),
                "depth": n.depth,
                "status": n.status,
                "goals": [g[:max_goal_chars] for g in n.state.goals[:4]],
                **({"visits": n.visits, "value": round(n.value, 4)} if n.visits else {}),
            }
            for n in self.nodes[:max_nodes]
        ]
        edges = [
            {
                "parent": e.parent,
                "tactic": e.tactic,
                "logprob": round(e.logprob, 4),
                "child": e.child,
                **({"error": e.error[:200]} if e.error else {}),
                **({"merged": True} if e.merged else {}),
            }
            for e in self.edges
            if e.parent < max_nodes
        ]
        return {"nodes": nodes, "edges": edges, "truncated": len(self.nodes) > max_nodes, "merges": self.merges}


def _is_ancestor(node: SearchNode, of: SearchNode) -> bool:
    current: SearchNode | None = of
    while current is not None:
        if current is node:
            return True
        current = current.parent
    return False


def assemble_proof(statement: str, tactics: list[str]) -> str:
    """The declaration ``statement`` (ending in ``:= by``, ``:=`` or ``:= by sorry``) proved by ``tactics``.

    Each tactic goes on its own line, indented by two spaces (continuation lines of a multi-line tactic keep their
    relative indentation).
    """
    head = statement.rstrip()
    for tail in ("sorry", "by", ":="):
        if head.endswith(tail):
            head = head[: -len(tail)].rstrip()
    lines = []
    for tactic in tactics:
        for line in tactic.strip("\n").split("\n"):
            lines.append("  " + line)
    return head + " := by\n" + "\n".join(lines) + "\n"
