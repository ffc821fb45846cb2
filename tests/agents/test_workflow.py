"""Workflow graphs: validation errors on construction and routing by message outcome."""

from __future__ import annotations

import pytest

from malot.agents import END, Edge, LeanCandidate, RouteView, VerifierFeedback, Workflow
from malot.errors import WorkflowError

from .scripted import ScriptedCorrector, ScriptedProver, ScriptedVerifier, prove_correct_loop


def _agents() -> list[object]:
    return [ScriptedProver(), ScriptedVerifier(lambda c, ctx: True), ScriptedCorrector()]


def test_valid_loop_builds_and_describes() -> None:
    wf = prove_correct_loop(lambda c, ctx: True)
    assert wf.start == "prover"
    assert "verifier -> __end__ [outcome == 'verified']" in wf.describe()
    assert set(wf.graph.nodes) == {"prover", "verifier", "corrector", END}


def test_unknown_node_is_named() -> None:
    with pytest.raises(WorkflowError, match=r"unknown node 'checker'; known nodes: corrector, prover, verifier"):
        Workflow("w", _agents(), [("prover", "checker"), ("verifier", END)])  # type: ignore[arg-type]


def test_no_exit_is_an_error() -> None:
    with pytest.raises(WorkflowError, match="has no exit"):
        Workflow(
            "w",
            _agents(),  # type: ignore[arg-type]
            [("prover", "verifier"), ("verifier", "corrector"), ("corrector", "verifier")],
        )


def test_unreachable_node_is_an_error() -> None:
    with pytest.raises(WorkflowError, match="corrector cannot be reached from start node 'prover'"):
        Workflow("w", _agents(), [("prover", "verifier"), ("verifier", END)])  # type: ignore[arg-type]


def test_node_without_path_to_exit_is_an_error() -> None:
    with pytest.raises(WorkflowError, match="corrector have no path to the exit"):
        Workflow(
            "w",
            _agents(),  # type: ignore[arg-type]
            [("prover", "verifier"), ("verifier", END, "verified"), ("verifier", "corrector")],
        )


def test_unknown_start_and_duplicate_roles() -> None:
    with pytest.raises(WorkflowError, match="start node 'nope'"):
        Workflow("w", _agents(), [("prover", END)], start="nope")  # type: ignore[arg-type]
    with pytest.raises(WorkflowError, match="share the role 'prover'"):
        Workflow("w", [ScriptedProver(), ScriptedProver()], [("prover", END)])


def test_message_types_must_fit_along_edges() -> None:
    with pytest.raises(WorkflowError, match="carries LeanCandidate but 'corrector' takes VerifierFeedback"):
        Workflow(
            "w",
            _agents(),  # type: ignore[arg-type]
            [("prover", "corrector"), ("corrector", "verifier"), ("verifier", END)],
        )


def test_routing_takes_first_matching_edge_and_reports_dead_ends() -> None:
    wf = Workflow(
        "w",
        [ScriptedProver(), ScriptedVerifier(lambda c, ctx: True)],
        [("prover", "verifier"), Edge("verifier", END, "verified")],
    )
    from collections import Counter

    view = RouteView(Counter(), 0)
    ok = VerifierFeedback(outcome="verified", candidate=LeanCandidate(code="x"))
    assert wf.route("verifier", ok, view) == END
    bad = VerifierFeedback(outcome="failed", candidate=LeanCandidate(code="x"))
    with pytest.raises(WorkflowError, match="no edge from 'verifier' matches a VerifierFeedback with outcome 'failed'"):
        wf.route("verifier", bad, view)
