"""Helpers for the prover tests: the prelude suite, problems made from it, scripted LoT answers, the verifier."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from malot.config import Settings
from malot.lean.file_backend import LeanFileVerifier
from malot.llm import GenerationRequest, prompt_text
from malot.provers import Problem

SUITE_FILE = Path(__file__).resolve().parents[1] / "data" / "prelude_suite" / "prelude_suite.jsonl"


def load_suite() -> list[dict[str, str]]:
    """The prelude theorem suite (tests/data/prelude_suite)."""
    return [json.loads(line) for line in SUITE_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]


def problem_of(record: dict[str, str]) -> Problem:
    """A :class:`Problem` from a suite record."""
    return Problem(
        name=record["name"], header=record["header"], statement=record["statement"], informal=record["informal"]
    )


def settings(**prover: Any) -> Settings:
    """Test settings: no demonstrations, the given prover options, LoT-Solver's preset unless another is named
    (the scripted answers of :func:`lot_answers` are in its format; the default preset's model uses another)."""
    prover = {"preset": "lot-solver", **prover}
    return Settings.model_validate({"prover": prover, "retrieval": {"retriever": "none", "k": 0}})


_TARGET_NAME = re.compile(r"theorem\s+(\S+)")


def lot_answers(suite: dict[str, dict[str, str]], *, wrong_rounds: int = 1) -> Callable[[GenerationRequest], str]:
    """A scripted LoT-Solver: a thought for pass 1; for pass 2 the wrong proof until ``wrong_rounds`` corrector
    prompts were seen for that theorem (counted per problem from the corrector's history), then the right one."""

    def answer(request: GenerationRequest) -> str:
        text = prompt_text(request)
        target = text.rsplit("@ Lean4 theorem statement:", 1)[-1]
        match = _TARGET_NAME.search(target)
        assert match is not None, "the prompt names no target theorem"
        record = suite[match.group(1)]
        if "<Output>" not in text.rsplit("<Thought>", 1)[-1]:
            return f"The theorem {record['name']} follows from its definitions."
        is_correction = "Here are the error messages" in text
        earlier = text.count("Attempt ") if is_correction else 0
        round_ = 0 if not is_correction else 1 + earlier
        proof = record["proof"] if round_ >= wrong_rounds else record["wrong_proof"]
        return f"  {proof}\n```&\n</Output>"

    return answer


@pytest.fixture
async def lean_verifier(lean_exe: Path) -> AsyncIterator[LeanFileVerifier]:
    """The file backend on the real Lean 4.35 fixture."""
    async with LeanFileVerifier(lean_exe, workers=6, sandbox="off") as verifier:
        yield verifier
