"""Workflows: directed graphs of agents whose edges carry conditions on the message a node produced.

A workflow is validated when it is built: every edge names known nodes, the start node exists, the exit
(:data:`END`) is reachable, every node is reachable from the start and can reach the exit, and the message types
along each edge fit. Routing takes the first edge (in declaration order) whose condition holds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx

from malot.agents.agent import Agent
from malot.agents.messages import Message
from malot.errors import WorkflowError

__all__ = ["END", "Condition", "Edge", "RouteView", "Workflow"]

#: The exit node. An edge into it ends the attempt with the message that crossed it.
END = "__end__"


@dataclass(frozen=True, slots=True)
class RouteView:
    """What an edge condition may look at besides the message: visit counts and the step number."""

    visits: Counter[str]
    step: int


Condition = str | Callable[[Message, RouteView], bool] | None
"""``None``: always; a string: the message's ``outcome`` equals it; a callable: a predicate."""


@dataclass(frozen=True, slots=True)
class Edge:
    """A conditional transition from ``source`` to ``target`` (a node name or :data:`END`)."""

    source: str
    target: str
    when: Condition = None

    def matches(self, message: Message, view: RouteView) -> bool:
        """Whether this edge applies to ``message``."""
        if self.when is None:
            return True
        if isinstance(self.when, str):
            return message.outcome == self.when
        return self.when(message, view)

    @property
    def label(self) -> str:
        """A short text for the condition, used in error messages and drawings."""
        if self.when is None:
            return "always"
        if isinstance(self.when, str):
            return f"outcome == {self.when!r}"
        return getattr(self.when, "__name__", "predicate")


class Workflow:
    """A validated graph of agents.

    ``agents`` are the nodes (named by their ``role``, or by the mapping keys); ``edges`` are :class:`Edge` values
    or ``(source, target)`` / ``(source, target, when)`` tuples; ``start`` is the node that receives the input
    message (default: the first agent). ``max_steps`` bounds the steps of one attempt.
    """

    def __init__(
        self,
        name: str,
        agents: Sequence[Agent[Any, Any]] | Mapping[str, Agent[Any, Any]],
        edges: Sequence[Edge | tuple[str, str] | tuple[str, str, Condition]],
        *,
        start: str | None = None,
        max_steps: int = 1000,
        check_types: bool = True,
    ) -> None:
        self.name = name
        if isinstance(agents, Mapping):
            self.agents: dict[str, Agent[Any, Any]] = dict(agents)
        else:
            self.agents = {}
            for agent in agents:
                if agent.role in self.agents:
                    raise WorkflowError(
                        f"workflow {name!r}: two agents share the role {agent.role!r}",
                        hint="give each node a distinct role or pass a mapping of node names to agents",
                    )
                self.agents[agent.role] = agent
        if not self.agents:
            raise WorkflowError(f"workflow {name!r} has no agents")
        if END in self.agents:
            raise WorkflowError(f"workflow {name!r}: {END!r} is reserved for the exit node")
        self.edges = [e if isinstance(e, Edge) else Edge(*e) for e in edges]
        self.start = start if start is not None else next(iter(self.agents))
        if max_steps < 1:
            raise WorkflowError(f"workflow {name!r}: max_steps must be at least 1, got {max_steps}")
        self.max_steps = max_steps
        self.graph = self._build_graph()
        self._validate(check_types)
        self._out: dict[str, list[Edge]] = {node: [] for node in self.agents}
        for edge in self.edges:
            self._out[edge.source].append(edge)

    def _build_graph(self) -> Any:
        graph = nx.MultiDiGraph(name=self.name)
        graph.add_nodes_from(self.agents)
        graph.add_node(END)
        for edge in self.edges:
            for end in (edge.source, edge.target):
                if end != END and end not in self.agents:
                    known = ", ".join(sorted(self.agents))
                    raise WorkflowError(
                        f"workflow {self.name!r}: edge {edge.source!r} -> {edge.target!r} names unknown node "
                        f"{end!r}; known nodes: {known}"
                    )
            if edge.source == END:
                raise WorkflowError(f"workflow {self.name!r}: an edge cannot leave the exit node")
            graph.add_edge(edge.source, edge.target, condition=edge.label)
        return graph

    def _validate(self, check_types: bool) -> None:
        if self.start not in self.agents:
            raise WorkflowError(
                f"workflow {self.name!r}: start node {self.start!r} is not an agent; "
                f"known nodes: {', '.join(sorted(self.agents))}"
            )
        if not any(edge.target == END for edge in self.edges):
            raise WorkflowError(
                f"workflow {self.name!r} has no exit: add an edge into END from the node that finishes an attempt"
            )
        reachable = nx.descendants(self.graph, self.start) | {self.start}
        unreachable = sorted(set(self.agents) - reachable)
        if unreachable:
            raise WorkflowError(
                f"workflow {self.name!r}: nodes {', '.join(unreachable)} cannot be reached from start node "
                f"{self.start!r}"
            )
        if END not in reachable:
            raise WorkflowError(f"workflow {self.name!r}: the exit cannot be reached from start node {self.start!r}")
        can_exit = nx.ancestors(self.graph, END)
        trapped = sorted(set(self.agents) - can_exit)
        if trapped:
            raise WorkflowError(f"workflow {self.name!r}: nodes {', '.join(trapped)} have no path to the exit (END)")
        if check_types:
            for edge in self.edges:
                if edge.target == END:
                    continue
                produced = self.agents[edge.source].output_type
                expected = self.agents[edge.target].input_type
                if not (issubclass(produced, expected) or issubclass(expected, produced)):
                    raise WorkflowError(
                        f"workflow {self.name!r}: edge {edge.source!r} -> {edge.target!r} carries "
                        f"{produced.__name__} but {edge.target!r} takes {expected.__name__}"
                    )

    def route(self, node: str, message: Message, view: RouteView) -> str:
        """The node that receives ``message`` produced by ``node`` (or :data:`END`)."""
        for edge in self._out[node]:
            if edge.matches(message, view):
                return edge.target
        conditions = "; ".join(e.label for e in self._out[node]) or "none"
        raise WorkflowError(
            f"workflow {self.name!r}: no edge from {node!r} matches a {type(message).__name__} with outcome "
            f"{message.outcome!r} (edge conditions: {conditions})",
            hint="add an edge for that outcome, for example a fallback edge into END",
        )

    def describe(self) -> str:
        """A plain-text listing of nodes and edges."""
        lines = [f"workflow {self.name} (start: {self.start})"]
        lines += [f"  {e.source} -> {e.target} [{e.label}]" for e in self.edges]
        return "\n".join(lines)
