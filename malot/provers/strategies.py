"""Proving strategies as workflows on the agents core: :class:`WholeProof` (the baseline) and :class:`MALoT`.

Both share the extraction, re-splice and verification path (:class:`~malot.provers.agents.VerifierAgent`); both
are run by the one :class:`~malot.agents.Executor`, one attempt per initial sample, with first-success cancellation.

* ``WholeProof``: ``whole_proof -> verifier -> END``.
* ``MALoT``: ``prover -> verifier``; ``verified -> END``; a failure goes to the ``corrector`` while the chain has
  rounds left (round r corrects round r-1's failure, with the earlier failures of the chain as history), and the
  corrector's candidate goes back to the verifier.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, ClassVar

from malot.agents import END, Edge, Message, RouteView, Task, Workflow
from malot.errors import ConfigError
from malot.provers.agents import CorrectorAgent, LoTProverAgent, ProofFeedback, VerifierAgent, WholeProofAgent
from malot.provers.problem import Problem
from malot.provers.registry import BUILTIN_STRATEGIES
from malot.provers.templates import ModelTemplate

if TYPE_CHECKING:
    from malot.config import Settings

__all__ = ["STRATEGIES", "MALoT", "Strategy", "WholeProof", "make_strategy"]


class Strategy:
    """A proving strategy: a workflow plus the initial messages (one per sample) it starts from."""

    name: ClassVar[str] = "strategy"

    def __init__(self, *, rounds: int = 0) -> None:
        if rounds < 0:
            raise ConfigError(f"rounds must be >= 0, got {rounds}")
        self.rounds = rounds

    @classmethod
    def from_settings(cls, *, rounds: int, settings: Settings | None = None) -> Strategy:
        """The strategy for a run: ``rounds`` correction rounds, other parameters from ``settings`` (or defaults)."""
        return cls(rounds=rounds)

    def workflow(self) -> Workflow:
        """The workflow graph of one attempt."""
        raise NotImplementedError

    def check_template(self, template: ModelTemplate) -> None:
        """Raise :class:`ConfigError` if ``template`` cannot drive this strategy."""

    def inputs(self, problem: Problem, samples: int) -> list[Task]:
        """One :class:`Task` per initial sample."""
        return [
            Task(
                problem_id=problem.name,
                statement=problem.statement,
                informal=problem.informal,
                header=problem.header,
                params={"sample": i, "strategy": self.name},
            )
            for i in range(samples)
        ]

    def describe(self) -> dict[str, Any]:
        """The strategy's parameters for results and traces."""
        return {"strategy": self.name, "rounds": self.rounds}


def _repair_settings(settings: Settings | None) -> Any:
    """The ``[decompose]`` settings when ``--repair`` (``decompose.repair``) is on, else ``None``."""
    return settings.decompose if settings is not None and settings.decompose.repair else None


def _repair_stage(repair: Any, decomposer: Any = None) -> tuple[list[Any], list[Any]]:
    """The repair node and its edges (APOLLO-style, :mod:`malot.provers.decompose.repair`) when ``repair`` is
    set: a failed verdict goes to ``repair`` (once per proof), whose assembled proof goes back to the verifier."""
    if repair is None:
        return [], []
    from malot.provers.decompose.engine import Decomposer
    from malot.provers.decompose.repair import RepairAgent, repairable

    agent = RepairAgent(decomposer or Decomposer(repair))
    return [agent], [Edge("verifier", "repair", repairable), ("repair", "verifier")]


class WholeProof(Strategy):
    """Whole-proof sampling: each attempt draws one complete proof and verifies it; no correction. With
    ``repair`` (the ``[decompose]`` settings), a failed proof is cut at its failing steps and repaired once."""

    name = "whole-proof"

    def __init__(self, *, rounds: int = 0, repair: Any = None) -> None:
        super().__init__(rounds=rounds)
        self.repair = repair

    @classmethod
    def from_settings(cls, *, rounds: int, settings: Settings | None = None) -> Strategy:
        return cls(repair=_repair_settings(settings))

    def workflow(self) -> Workflow:
        agents, edges = _repair_stage(self.repair)
        return Workflow(
            "whole-proof",
            [WholeProofAgent(), VerifierAgent(), *agents],
            [("whole_proof", "verifier"), Edge("verifier", END, "verified"), *edges, Edge("verifier", END)],
            start="whole_proof",
            max_steps=6,
        )

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "repair": self.repair is not None}


class MALoT(Strategy):
    """MA-LoT: LoT prover, verifier, and up to ``rounds`` chained corrector rounds per initial sample."""

    name = "ma-lot"

    def __init__(self, *, rounds: int = 2, repair: Any = None) -> None:
        super().__init__(rounds=rounds)
        self.repair = repair

    @classmethod
    def from_settings(cls, *, rounds: int, settings: Settings | None = None) -> Strategy:
        return cls(rounds=rounds, repair=_repair_settings(settings))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "repair": self.repair is not None}

    def check_template(self, template: ModelTemplate) -> None:
        if self.rounds > 0 and not template.supports_correction:
            raise ConfigError(
                f"template {template.name!r} has no corrector prompt, so MA-LoT cannot correct failed proofs",
                hint="use --strategy whole-proof, --rounds 0, or a template with a corrector (e.g. lot-solver)",
            )

    def workflow(self) -> Workflow:
        rounds = self.rounds

        def correctable(message: Message, view: RouteView) -> bool:
            return isinstance(message, ProofFeedback) and message.candidate.round < rounds

        agents, edges = _repair_stage(self.repair)
        return Workflow(
            "ma-lot",
            [LoTProverAgent(), VerifierAgent(), CorrectorAgent(), *agents],
            [
                ("prover", "verifier"),
                Edge("verifier", END, "verified"),
                *edges,
                Edge("verifier", "corrector", correctable),
                Edge("verifier", END),
                ("corrector", "verifier"),
            ],
            start="prover",
            max_steps=(4 if agents else 2) * (rounds + 1) + 1,
        )


#: Every strategy name ``--strategy`` accepts (see :mod:`malot.provers.registry`).
STRATEGIES: tuple[str, ...] = tuple(BUILTIN_STRATEGIES)


def make_strategy(name: str, *, rounds: int, settings: Settings | None = None) -> Strategy:
    """The strategy called ``name`` with ``rounds`` correction rounds, its other parameters from ``settings``."""
    target = BUILTIN_STRATEGIES.get(name)
    if target is None:
        raise ConfigError(f"unknown strategy {name!r}", hint=f"strategies: {', '.join(BUILTIN_STRATEGIES)}")
    module_name, _, attribute = target.partition(":")
    factory: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        factory = getattr(factory, part)
    strategy = factory(rounds=rounds, settings=settings)
    if not isinstance(strategy, Strategy):
        raise ConfigError(f"strategy {name!r} ({target}) did not build a Strategy")
    return strategy
