"""One exception hierarchy for malot.

Every error malot raises on purpose is a :class:`MalotError`. Its message says what went wrong *and what to do
next*; the CLI prints it as one line and exits with status 2, without a traceback.
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailableError",
    "BudgetExhaustedError",
    "CapabilityError",
    "ConfigError",
    "DatasetError",
    "LLMError",
    "LeanError",
    "MalotError",
    "PluginError",
    "RetrievalError",
    "ToolError",
    "VerifierError",
    "WorkflowError",
]


class MalotError(Exception):
    """Base class of every error malot raises deliberately.

    ``hint`` is an optional next step for the user; it is appended to the message.
    """

    exit_code: int = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message} ({hint})" if hint else message)


class ConfigError(MalotError):
    """The configuration (file, environment variable or flag) is invalid."""


class WorkflowError(MalotError):
    """A workflow graph is malformed, or a run could not be routed through it."""


class BudgetExhaustedError(MalotError):
    """A budget (samples, tokens, Lean CPU-seconds, wall time) was spent before a run could try anything.

    Raised by :meth:`malot.Prover.prove` (so ``malot prove`` exits 2 with the limit named) when the budget stopped a
    proof before any candidate was drawn; a run that tried candidates and ran out returns a result with
    ``stopped`` set instead.
    """


class BackendUnavailableError(MalotError):
    """An optional backend (a Python extra, a binary, a server) is not installed or not reachable."""


class CapabilityError(MalotError):
    """A strategy asked a backend for something it cannot do (e.g. prompt log-probs, infilling)."""


class LLMError(MalotError):
    """A language-model backend failed to answer a request."""


class LeanError(MalotError):
    """Talking to Lean failed (process crash, protocol error, timeout)."""


class VerifierError(LeanError):
    """The verifier could not produce a verdict for a snippet."""


class RetrievalError(MalotError):
    """A retriever, corpus or index is invalid or missing."""


class DatasetError(MalotError):
    """A dataset file or problem name is invalid."""


class ToolError(MalotError):
    """A tool call failed: unknown tool, invalid arguments, or an error inside the tool."""


class PluginError(ToolError):
    """A plugin could not be discovered or loaded."""
