"""The public API is pinned, like httpx pins its own: the names of ``import malot`` and their typed signatures.

A change here is a change of the stable API: update the pins on purpose (and the changelog), never by accident.
(Pins updated so far: ``Prover.prove(max_tokens=...)``, the per-call generation cap of the job API.)
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

import malot
import malot.api
import malot.provers.api

#: ``str(inspect.signature(...))`` of every public callable (postponed annotations, so types appear as text).
SIGNATURES: dict[str, str] = {
    "prove": (
        "(statement: 'str | Problem', *, settings: 'Settings | None' = None, "
        "model: 'str | None' = None, lean: 'str | Path | None' = None, "
        "strategy: 'str | None' = None, samples: 'int | None' = None, rounds: 'int | None' = None, "
        "llm: 'LLM | None' = None, verifier: 'Verifier | None' = None, "
        "demos: 'Sequence[Mapping[str, str]] | None' = None, "
        "trace: 'str | Path | None' = None) -> 'ProofResult'"
    ),
    "prove_sync": (
        "(statement: 'str | Problem', *, settings: 'Settings | None' = None, "
        "model: 'str | None' = None, lean: 'str | Path | None' = None, "
        "strategy: 'str | None' = None, samples: 'int | None' = None, rounds: 'int | None' = None, "
        "llm: 'LLM | None' = None, verifier: 'Verifier | None' = None, "
        "demos: 'Sequence[Mapping[str, str]] | None' = None, "
        "trace: 'str | Path | None' = None) -> 'ProofResult'"
    ),
    "verify": (
        "(code: 'str | None' = None, *, header: 'str | None' = None, "
        "statement: 'str | None' = None, proof: 'str | None' = None, theorem: 'str | None' = None, "
        "settings: 'Settings | None' = None, lean: 'str | Path | None' = None, "
        "verifier: 'Verifier | None' = None, rule: 'AcceptanceRule | None' = None, "
        "timeout_s: 'float | None' = None) -> 'CheckResult'"
    ),
    "verify_sync": (
        "(code: 'str | None' = None, *, header: 'str | None' = None, "
        "statement: 'str | None' = None, proof: 'str | None' = None, theorem: 'str | None' = None, "
        "settings: 'Settings | None' = None, lean: 'str | Path | None' = None, "
        "verifier: 'Verifier | None' = None, rule: 'AcceptanceRule | None' = None, "
        "timeout_s: 'float | None' = None) -> 'CheckResult'"
    ),
    "load_settings": (
        "(path: 'str | Path | None' = None, *, env: 'Mapping[str, str] | None' = None, "
        "overrides: 'Mapping[str, Any] | None' = None) -> 'Settings'"
    ),
    "load_verifier": ("(settings: 'LeanSettings', *, workers: 'int | None' = None) -> 'Verifier'"),
    "load_llm": ("(spec: 'str | LLMSettings', *, backend: 'str | None' = None, **options: 'Any') -> 'LLM'"),
    "Prover": (
        "(settings: 'Settings | None' = None, *, llm: 'LLM | None' = None, "
        "verifier: 'Verifier | None' = None, retriever: 'Retriever | None' = None, "
        "demos: 'Sequence[Mapping[str, str]] | None' = None, strategy: 'str | None' = None, "
        "template: 'str | None' = None, trace: 'str | Path | None' = None, "
        "on_event: 'EventCallback | None' = None) -> 'None'"
    ),
    "Prover.prove": (
        "(self, problem: 'Problem | str', *, strategy: 'str | Strategy | None' = None, "
        "samples: 'int | None' = None, rounds: 'int | None' = None, "
        "budget: 'Budget | None' = None, group_id: 'str | None' = None, max_tokens: 'int | None' = None) "
        "-> 'ProofResult'"
    ),
    "MalotError": ("(message: 'str', *, hint: 'str | None' = None) -> 'None'"),
}


def _target(name: str) -> Any:
    obj: Any = malot
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize("name", sorted(SIGNATURES))
def test_public_signature_is_pinned(name: str) -> None:
    assert str(inspect.signature(_target(name))) == SIGNATURES[name]


def test_every_public_callable_has_a_pinned_signature() -> None:
    functions = {n for n in malot.__all__ if inspect.isfunction(getattr(malot, n))}
    assert functions <= set(SIGNATURES)


def test_prove_is_the_typed_prover_function_itself() -> None:
    assert malot.prove is malot.provers.api.prove is malot.api.prove
    assert inspect.iscoroutinefunction(malot.prove) and not inspect.iscoroutinefunction(malot.prove_sync)
    assert malot.prove_sync.__name__ == "prove_sync" and malot.prove_sync.__doc__


@pytest.mark.parametrize("name", ["prove", "prove_sync", "verify", "verify_sync", "Prover", "Prover.prove"])
def test_proving_and_verifying_take_no_untyped_arguments(name: str) -> None:
    signature = inspect.signature(_target(name))
    for parameter in signature.parameters.values():
        if parameter.name == "self":
            continue
        assert parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD), parameter
        assert parameter.annotation is not inspect.Parameter.empty and "Any" not in str(parameter.annotation), parameter


def test_sync_forms_raise_the_real_error_without_a_chained_event_loop_error(tmp_path: Any) -> None:
    with pytest.raises(malot.MalotError) as caught:
        malot.verify_sync(statement="theorem t : True := by", proof="trivial", lean=tmp_path / "no-lean")
    assert caught.value.__context__ is None and caught.value.__cause__ is None
