"""Proving strategies as workflows on the agents core: :class:`WholeProof` (the baseline) and :class:`MALoT`.

Both share the extraction, re-splice and verification path (:class:`~malot.provers.agents.VerifierAgent`); both
are run by the one :class:`~malot.agents.Executor`, one attempt per initial sample, with first-success cancellation.

* ``WholeProof``: ``whole_proof -> verifier -> END``.
* ``MALoT``: ``prover -> verifier``; ``verified -> END``; a failure goes to the ``corrector`` while the chain has
  rounds left (round r corrects round r-1's failure, with the earlier failures of the chain as history), and the
  corrector's candidate goes back to the verifier.
"""

from __future__ import annotations

from typing import Any, ClassVar

from malot.agents import END, Edge, Message, RouteView, Task, Workflow
from malot.errors import ConfigError
from malot.provers.agents import CorrectorAgent, LoTProverAgent, ProofFeedback, VerifierAgent, WholeProofAgent
from malot.provers.problem import Problem
from malot.provers.templates import ModelTemplate

__all__ = ["STRATEGIES", "MALoT", "Strategy", "WholeProof", "make_strategy"]


class Strategy:
    """A proving strategy: a workflow plus the initial messages (one per sample) it starts from."""

    name: ClassVar[str] = "strategy"

    def __init__(self, *, rounds: int = 0) -> None:
        if rounds < 0:
            raise ConfigError(f"rounds must be >= 0, got {rounds}")
        self.rounds = rounds

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


class WholeProof(Strategy):
    """Whole-proof sampling: each attempt draws one complete proof and verifies it; no correction."""

    name = "whole-proof"

    def workflow(self) -> Workflow:
        return Workflow(
            "whole-proof",
            [WholeProofAgent(), VerifierAgent()],
            [("whole_proof", "verifier"), Edge("verifier", END)],
            start="whole_proof",
            max_steps=4,
        )


class MALoT(Strategy):
    """MA-LoT: LoT prover, verifier, and up to ``rounds`` chained corrector rounds per initial sample."""

    name = "ma-lot"

    def __init__(self, *, rounds: int = 2) -> None:
        super().__init__(rounds=rounds)

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

        return Workflow(
            "ma-lot",
            [LoTProverAgent(), VerifierAgent(), CorrectorAgent()],
            [
                ("prover", "verifier"),
                Edge("verifier", END, "verified"),
                Edge("verifier", "corrector", correctable),
                Edge("verifier", END),
                ("corrector", "verifier"),
            ],
            start="prover",
            max_steps=2 * (rounds + 1) + 1,
        )


STRATEGIES: dict[str, type[Strategy]] = {"whole-proof": WholeProof, "ma-lot": MALoT}


def make_strategy(name: str, *, rounds: int) -> Strategy:
    """The strategy called ``name`` (``ma-lot`` or ``whole-proof``)."""
    if name == "ma-lot":
        return MALoT(rounds=rounds)
    if name == "whole-proof":
        return WholeProof()
    raise ConfigError(f"unknown strategy {name!r}", hint=f"strategies: {', '.join(STRATEGIES)}")
