"""The leanprover-community REPL's wire protocol as frozen pydantic models (camelCase on the wire).

Commands: :class:`Command` (``cmd``, optional ``env``, ``allTactics``, ``rootGoals``, ``infotree``),
:class:`FileCommand` (``path``), :class:`ProofStep` (``tactic`` + ``proofState``), and pickling
(:class:`PickleEnvironment`, :class:`UnpickleEnvironment`, :class:`PickleProofState`,
:class:`UnpickleProofState`). Responses: :class:`CommandResponse` (env, messages, sorries, tactics, infotree),
:class:`ProofStepResponse` (proofState, goals, proofStatus) and :class:`ReplError` (``{"message": ...}``).

Framing: a command is one line of JSON followed by a blank line (:func:`encode_command` never emits a raw newline);
a response is read up to the next blank line.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Command",
    "CommandResponse",
    "FileCommand",
    "PickleEnvironment",
    "PickleProofState",
    "ProofStep",
    "ProofStepResponse",
    "ReplCommand",
    "ReplError",
    "ReplMessage",
    "ReplPos",
    "ReplResponse",
    "ReplSorry",
    "ReplTactic",
    "UnpickleEnvironment",
    "UnpickleProofState",
    "decode_response",
    "encode_command",
    "parse_command",
]


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="allow")

    def wire(self) -> dict[str, Any]:
        """The JSON object as the REPL spells it (camelCase, unset fields left out)."""
        return self.model_dump(by_alias=True, exclude_unset=True, mode="json")


# --- commands -------------------------------------------------------------------------------------------------


class Command(_Wire):
    """Elaborate Lean source, in a fresh environment or on top of ``env``."""

    cmd: str
    env: int | None = None
    all_tactics: bool | None = Field(None, alias="allTactics")
    root_goals: bool | None = Field(None, alias="rootGoals")
    infotree: str | None = None


class FileCommand(_Wire):
    """Elaborate a file by path."""

    path: str
    env: int | None = None
    all_tactics: bool | None = Field(None, alias="allTactics")
    infotree: str | None = None


class ProofStep(_Wire):
    """Run one tactic on a proof state."""

    tactic: str
    proof_state: int = Field(alias="proofState")


class PickleEnvironment(_Wire):
    """Save environment ``env`` to an ``.olean`` file."""

    pickle_to: str = Field(alias="pickleTo")
    env: int


class UnpickleEnvironment(_Wire):
    """Load an environment saved by :class:`PickleEnvironment`."""

    unpickle_env_from: str = Field(alias="unpickleEnvFrom")


class PickleProofState(_Wire):
    """Save proof state ``proofState`` to a file."""

    pickle_to: str = Field(alias="pickleTo")
    proof_state: int = Field(alias="proofState")


class UnpickleProofState(_Wire):
    """Load a proof state saved by :class:`PickleProofState` (optionally into ``env``)."""

    unpickle_proof_state_from: str = Field(alias="unpickleProofStateFrom")
    env: int | None = None


ReplCommand = (
    Command | FileCommand | ProofStep | PickleEnvironment | UnpickleEnvironment | PickleProofState | UnpickleProofState
)

# --- responses ------------------------------------------------------------------------------------------------


class ReplPos(_Wire):
    """A position: 1-based line, 0-based column."""

    line: int
    column: int


class ReplMessage(_Wire):
    """A message Lean logged."""

    severity: str
    pos: ReplPos | None = None
    end_pos: ReplPos | None = Field(None, alias="endPos")
    data: str


class ReplSorry(_Wire):
    """A ``sorry`` and the proof state it opens."""

    pos: ReplPos | None = None
    end_pos: ReplPos | None = Field(None, alias="endPos")
    goal: str = ""
    proof_state: int | None = Field(None, alias="proofState")


class ReplTactic(_Wire):
    """A tactic reported with ``allTactics``."""

    tactic: str
    goals: str = ""
    pos: ReplPos | None = None
    end_pos: ReplPos | None = Field(None, alias="endPos")
    proof_state: int | None = Field(None, alias="proofState")
    used_constants: list[str] | None = Field(None, alias="usedConstants")


class CommandResponse(_Wire):
    """The answer to a command: the new environment id and what Lean said."""

    env: int | None = None
    messages: list[ReplMessage] = Field(default_factory=list)
    sorries: list[ReplSorry] = Field(default_factory=list)
    tactics: list[ReplTactic] = Field(default_factory=list)
    infotree: Any = None


class ProofStepResponse(_Wire):
    """The answer to a tactic or a proof-state (un)pickle.

    ``proofStatus`` "Completed" only says the tactic closed its goals; malot never accepts a proof on it alone
    (the assembled proof is always re-checked as a whole command).
    """

    proof_state: int = Field(alias="proofState")
    goals: list[str] = Field(default_factory=list)
    messages: list[ReplMessage] = Field(default_factory=list)
    sorries: list[ReplSorry] = Field(default_factory=list)
    traces: list[str] | None = None
    proof_status: str | None = Field(None, alias="proofStatus")


class ReplError(_Wire):
    """The REPL refused a command (``{"message": "Unknown environment."}``)."""

    message: str


ReplResponse = CommandResponse | ProofStepResponse | ReplError


def encode_command(command: ReplCommand) -> bytes:
    """The bytes to write for ``command``: one JSON line plus the blank line that ends it."""
    text = json.dumps(command.wire(), ensure_ascii=False)
    return (text + "\n\n").encode("utf-8")


def parse_command(obj: dict[str, Any]) -> ReplCommand:
    """The command model for a JSON object (as recorded in REPL transcripts)."""
    if "cmd" in obj:
        return Command.model_validate(obj)
    if "path" in obj:
        return FileCommand.model_validate(obj)
    if "tactic" in obj:
        return ProofStep.model_validate(obj)
    if "unpickleEnvFrom" in obj:
        return UnpickleEnvironment.model_validate(obj)
    if "unpickleProofStateFrom" in obj:
        return UnpickleProofState.model_validate(obj)
    if "pickleTo" in obj and "proofState" in obj:
        return PickleProofState.model_validate(obj)
    if "pickleTo" in obj:
        return PickleEnvironment.model_validate(obj)
    raise ValueError(f"not a REPL command: {sorted(obj)}")


def decode_response(obj: Any) -> ReplResponse:
    """The response model for a decoded JSON value; raises ValueError if it is not a REPL response."""
    if not isinstance(obj, dict):
        raise ValueError(f"a REPL response is a JSON object, got {type(obj).__name__}")
    if "message" in obj and not ({"env", "messages", "proofState"} & obj.keys()):
        return ReplError.model_validate(obj)
    if "proofState" in obj and ("goals" in obj or "proofStatus" in obj):
        return ProofStepResponse.model_validate(obj)
    return CommandResponse.model_validate(obj)
