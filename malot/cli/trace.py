"""``malot trace show FILE``: a trace file as groups, attempts and steps, with tactic-search trees drawn.

Each group (problem) lists its attempts (status, steps, wall time) and their steps (node, outcome, duration). A
step of a tactic search (``best-first``, ``rmaxts``) carries its search tree (``notes[].search_tree``), drawn as a
tree of proof states: each node's goal, score and status, each edge's tactic and log-probability, failed tactics
with their error, merged (deduplicated) states marked. ``--json`` prints the rebuilt structure instead.
"""

from __future__ import annotations

from typing import Any

import click
from rich.markup import escape
from rich.tree import Tree

from malot.cli.common import console, echo_json

__all__ = ["command", "render_search_tree"]


@click.group("trace")
def command() -> None:
    """Read trace files written by malot prove / eval."""


def _goal(node: dict[str, Any]) -> str:
    goals = node.get("goals") or []
    if not goals:
        return "no goals"
    last = str(goals[0]).strip().split("\n")[-1]
    more = f" (+{len(goals) - 1} goals)" if len(goals) > 1 else ""
    return last + more


def render_search_tree(tree: dict[str, Any], *, max_errors: int = 3) -> Tree:
    """A rich tree of a search tree dict (:meth:`malot.provers.search.tree.SearchTree.to_dict`)."""
    nodes = {int(n["id"]): n for n in tree.get("nodes", [])}
    children: dict[int, list[dict[str, Any]]] = {}
    for edge in tree.get("edges", []):
        children.setdefault(int(edge["parent"]), []).append(edge)

    def label(node: dict[str, Any]) -> str:
        status = str(node.get("status", ""))
        color = {"proved": "green", "rejected": "red", "expanded": "cyan"}.get(status, "white")
        return f"[{color}]\\[{node['id']}] {escape(_goal(node))}[/] (score {node.get('score', 0):.2f}, {status})"

    root = nodes.get(0)
    out = Tree(label(root) if root else "(empty search tree)")
    seen: set[int] = {0}

    def grow(branch: Tree, node_id: int) -> None:
        errors = 0
        for edge in children.get(node_id, []):
            tactic = escape(str(edge["tactic"]).replace("\n", " ⏎ "))
            lp = f"{float(edge.get('logprob', 0.0)):.2f}"
            child = edge.get("child")
            if child is None:
                errors += 1
                if errors <= max_errors:
                    branch.add(f"[red]✗ {tactic}[/] ({lp}): {escape(str(edge.get('error', '')))}")
                continue
            if edge.get("merged") or child in seen or child not in nodes:
                branch.add(f"{tactic} ({lp}) → [dim]\\[{child}] (merged)[/]")
                continue
            seen.add(int(child))
            grow(branch.add(f"{tactic} ({lp}) → {label(nodes[int(child)])}"), int(child))
        if errors > max_errors:
            branch.add(f"[red]… {errors - max_errors} more failed tactics[/]")

    if root is not None:
        grow(out, 0)
    if tree.get("truncated"):
        out.add("[dim](tree truncated in the trace)[/]")
    return out


def _note(notes: list[dict[str, Any]], key: str) -> Any:
    return next((n[key] for n in notes if key in n), None)


@command.command("show")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--group", "group_id", help="Show only this group (problem).")
@click.option("--errors", "max_errors", type=click.IntRange(min=0), default=3, help="Failed tactics shown per state.")
@click.option("--json", "as_json", is_flag=True, help="Print groups, attempts, steps and search trees as JSON.")
def show(path: str, group_id: str | None, max_errors: int, as_json: bool) -> int:
    """Show the trace in PATH: attempts, steps and tactic-search trees."""
    from malot.agents import read_trace
    from malot.errors import ConfigError

    trace = read_trace(path)
    groups = [g for g in trace.groups.values() if group_id is None or g.group_id == group_id]
    if group_id is not None and not groups:
        raise ConfigError(f"no group {group_id!r} in {path}", hint=f"groups: {', '.join(trace.groups)}")
    if as_json:
        echo_json(
            [
                {
                    "group": g.group_id,
                    "solved": g.finished.solved if g.finished else None,
                    "attempts": [
                        {
                            "attempt": a.attempt_id,
                            "status": a.status,
                            "steps": [
                                {
                                    "node": s.node,
                                    "outcome": s.outcome,
                                    "duration_s": s.duration_s,
                                    "search": _note(s.notes, "search"),
                                    "search_tree": _note(s.notes, "search_tree"),
                                }
                                for s in a.steps
                            ],
                        }
                        for a in g.attempts.values()
                    ],
                }
                for g in groups
            ]
        )
        return 0
    for group in groups:
        problem = next((n.get("problem") for n in group.notes if n.get("problem")), group.group_id)
        solved = "solved" if group.finished and group.finished.solved else "not solved"
        console.print(f"[bold]{escape(str(problem))}[/] ({escape(group.group_id)}): {solved}")
        for attempt in group.attempts.values():
            wall = f"{attempt.finished.wall_s:.2f}s" if attempt.finished else "?"
            steps = len(attempt.steps)
            console.print(f"  attempt {escape(attempt.attempt_id)}: {attempt.status}, {steps} steps, {wall}")
            for step in attempt.steps:
                console.print(f"    {escape(step.node)} -> {escape(step.outcome)} ({step.duration_s:.3f}s)")
                for note in step.notes:
                    if "search" in note:
                        stats = ", ".join(f"{k} {v}" for k, v in note["search"].items() if k != "wall_s")
                        console.print(f"      search: {escape(stats)}")
                    if "search_tree" in note:
                        tree = render_search_tree(note["search_tree"], max_errors=max_errors)
                        console.print(tree)
    return 0
