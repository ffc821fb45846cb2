"""What a solver reports: one :class:`AttemptRecord` per proof attempt and a :class:`ProblemOutcome` per problem.

These plain records are the seam between the evaluation runner and whatever proves problems (the provers'
strategies, or any :class:`~malot.eval.solver.ProblemSolver`). They are JSON-able so the Ray backend can ship them
from workers to the driver, which alone writes the results store.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["AttemptRecord", "ProblemOutcome", "prompt_hash"]


def prompt_hash(prompt: object) -> str:
    """A short stable hash of a prompt (text or chat messages), so identical prompts can be grouped."""
    return hashlib.sha256(repr(prompt).encode("utf-8")).hexdigest()[:16]


@dataclass(slots=True)
class AttemptRecord:
    """One proof attempt: which round of which sample, what the model said, the proof tried and Lean's verdict.

    ``sample`` numbers independent samples (pass@k counts them); ``round`` is the correction round within a sample
    (0 = the first proof). ``verified`` is the acceptance verdict; ``flags`` holds the verdict details (sorry used,
    axioms, errors count ...). ``lean_s`` is Lean wall time, ``lean_cpu_s`` its CPU time; ``wall_s`` is the wall
    time of the whole sample (all its rounds), as the executor measured the attempt.
    """

    problem: str
    sample: int
    round: int = 0
    strategy: str = ""
    prompt_hash: str = ""
    output: str = ""
    proof: str = ""
    verified: bool = False
    status: str = "failed"
    flags: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    lean_s: float = 0.0
    lean_cpu_s: float = 0.0
    wall_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AttemptRecord:
        """Rebuild a record from :meth:`to_dict`'s output."""
        return cls(**data)


@dataclass(slots=True)
class ProblemOutcome:
    """How a problem ended: solved or not, the accepted proof, and an error if the solver failed outright."""

    problem: str
    solved: bool
    proof: str | None = None
    error: str | None = None
    stopped: str | None = None
    wall_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProblemOutcome:
        """Rebuild an outcome from :meth:`to_dict`'s output."""
        return cls(**data)
