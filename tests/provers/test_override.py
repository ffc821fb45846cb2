"""``Prover.override``: swap the model or the verifier of an open prover in a test, and get the prover's own back."""

from __future__ import annotations

from pathlib import Path

import pytest

from malot.errors import ConfigError
from malot.lean.file_backend import LeanFileVerifier
from malot.llm import ScriptedLLM
from malot.provers import Prover

from .helpers import load_suite, lot_answers, problem_of, settings

SUITE = {r["name"]: r for r in load_suite()}
AND_SWAP = SUITE["and_swap"]


@pytest.mark.lean
async def test_override_swaps_the_model_and_the_verifier_then_restores_them(
    lean_verifier: LeanFileVerifier, lean_exe: Path
) -> None:
    wrong = ScriptedLLM(lot_answers(SUITE, wrong_rounds=9))  # never right within the rounds
    right = ScriptedLLM(lot_answers(SUITE, wrong_rounds=0))
    async with (
        LeanFileVerifier(lean_exe, workers=1, sandbox="off") as other_verifier,
        Prover(settings(samples=1, rounds=0), llm=wrong, verifier=lean_verifier) as prover,
    ):
        async with prover.override(llm=right, verifier=other_verifier) as overridden:
            assert overridden is prover and prover.llm is right and prover.verifier is other_verifier
            result = await prover.prove(problem_of(AND_SWAP))
        assert result.proved and right.requests and not wrong.requests
        assert prover.llm is wrong and prover.verifier is lean_verifier
        again = await prover.prove(problem_of(AND_SWAP))
        assert not again.proved and wrong.requests
    assert not right.closed  # overriding objects are the caller's


async def test_override_needs_an_open_prover() -> None:
    prover = Prover(settings(samples=1))
    with pytest.raises(ConfigError, match="not open"):
        async with prover.override(llm=ScriptedLLM(["x"])):
            pass
