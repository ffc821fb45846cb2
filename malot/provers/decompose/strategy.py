"""The ``decompose`` strategy (Hilbert / Goedel-Architect style) as a workflow on the executor.

``skeleton -> skeleton_check``; ``sketched -> lemmas``; a skeleton that does not compile goes back to
``skeleton`` while the attempt has rounds left; ``lemmas`` hands the assembled proof to the ``verifier`` (the one
acceptance rule), or sends the skeleton back for revision when a step was shown false, or ends the attempt when a
step could not be proved. ``rounds`` bounds the skeleton revisions of one attempt (and of each recursive
decomposition of a lemma).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from malot.agents import END, Edge, Message, RouteView, Workflow
from malot.provers.agents import ProofCandidate, VerifierAgent
from malot.provers.decompose.agents import LemmaAgent, SkeletonAgent, SkeletonCheckAgent, SkeletonFeedback, StepRefuted
from malot.provers.decompose.engine import Decomposer, LemmaCache
from malot.provers.strategies import Strategy

if TYPE_CHECKING:
    from malot.config import DecomposeSettings, Settings

__all__ = ["Decompose"]


class Decompose(Strategy):
    """Plan, skeleton with ``sorry`` steps, lemmas proved in parallel with a shared cache, assembly, final check."""

    name = "decompose"

    def __init__(self, *, rounds: int = 2, settings: DecomposeSettings | None = None) -> None:
        super().__init__(rounds=rounds)
        from malot.config import DecomposeSettings

        self.settings = settings or DecomposeSettings()
        self.cache = LemmaCache()
        self.decomposer = Decomposer(self.settings, self.cache)

    @classmethod
    def from_settings(cls, *, rounds: int, settings: Settings | None = None) -> Strategy:
        return cls(rounds=rounds, settings=settings.decompose if settings is not None else None)

    def workflow(self) -> Workflow:
        rounds = self.rounds

        def revisable(message: Message, view: RouteView) -> bool:
            candidate = getattr(message, "candidate", None)
            failed = isinstance(message, SkeletonFeedback | StepRefuted)
            return failed and isinstance(candidate, ProofCandidate) and candidate.round < rounds

        def assembled(message: Message, view: RouteView) -> bool:
            return isinstance(message, ProofCandidate)

        return Workflow(
            "decompose",
            [
                SkeletonAgent(self.decomposer),
                SkeletonCheckAgent(self.decomposer),
                LemmaAgent(self.decomposer),
                VerifierAgent(),
            ],
            [
                ("skeleton", "skeleton_check"),
                Edge("skeleton_check", "lemmas", "sketched"),
                Edge("skeleton_check", "skeleton", revisable),
                Edge("skeleton_check", END),
                Edge("lemmas", "verifier", assembled),
                Edge("lemmas", "skeleton", revisable),
                Edge("lemmas", END),
                Edge("verifier", END),
            ],
            start="skeleton",
            max_steps=3 * (rounds + 1) + 2,
        )

    def describe(self) -> dict[str, Any]:
        data = super().describe()
        data.update(
            {
                "max_depth": self.settings.max_depth,
                "sub_strategy": self.settings.sub_strategy,
                "automation": list(self.settings.automation),
                "lemma_samples": self.settings.lemma_samples,
            }
        )
        return data
