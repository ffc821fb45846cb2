"""Typed messages that agents pass to each other.

Every message is an immutable pydantic model with an ``outcome`` label; workflow edges route on it (for example
a verifier emits ``outcome="verified"`` or ``"failed"``). Strategies define their own messages by subclassing
:class:`Message`; the ones here are the vocabulary shared by the proving workflows.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "LeanCandidate",
    "Message",
    "Task",
    "Thought",
    "Usage",
    "VerifierFeedback",
]


class Usage(BaseModel):
    """Compute an agent step spent: samples drawn, tokens in and out, Lean CPU-seconds, LLM calls made."""

    model_config = ConfigDict(frozen=True)

    samples: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    lean_cpu_seconds: float = 0.0
    llm_calls: int = 0

    @property
    def tokens(self) -> int:
        """Tokens in plus tokens out."""
        return self.tokens_in + self.tokens_out

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            samples=self.samples + other.samples,
            tokens_in=self.tokens_in + other.tokens_in,
            tokens_out=self.tokens_out + other.tokens_out,
            lean_cpu_seconds=self.lean_cpu_seconds + other.lean_cpu_seconds,
            llm_calls=self.llm_calls + other.llm_calls,
        )


class Message(BaseModel):
    """Base class of every message; ``outcome`` is what workflow edges route on."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    #: Outcomes that count as success when a message ends an attempt.
    success_outcomes: ClassVar[frozenset[str]] = frozenset({"verified", "success"})

    outcome: str = "ok"
    usage: Usage = Field(default_factory=Usage)

    @property
    def succeeded(self) -> bool:
        """Whether this message, as the last of an attempt, means the attempt succeeded."""
        return self.outcome in self.success_outcomes

    def summary(self) -> dict[str, Any]:
        """A JSON-ready view for traces; subclasses may shorten large fields."""
        return self.model_dump(mode="json")


class Task(Message):
    """The input that starts an attempt: a problem statement plus free-form strategy parameters."""

    problem_id: str = ""
    statement: str = ""
    informal: str | None = None
    header: str = ""
    params: dict[str, Any] = Field(default_factory=dict)


class Thought(Message):
    """Natural-language reasoning produced by an agent."""

    text: str


class LeanCandidate(Message):
    """A Lean proof candidate, with the reasoning that led to it."""

    code: str
    thought: str | None = None
    round: int = 0
    sample: int = 0
    raw_output: str | None = None


class VerifierFeedback(Message):
    """Lean's verdict on a candidate: ``outcome`` is ``"verified"`` or ``"failed"``; errors are human readable."""

    candidate: LeanCandidate
    errors: list[str] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)
