"""Problems from MiniF2F rows, statement strings and .lean files; statements end in ``:= by`` or ``:=``."""

from __future__ import annotations

from pathlib import Path

import pytest

from malot.errors import DatasetError
from malot.provers import Problem, load_problem
from malot.provers.problem import DEFAULT_HEADER


def test_from_minif2f() -> None:
    problem = load_problem("minif2f:mathd_algebra_10")
    assert problem.name == "mathd_algebra_10" and problem.split in ("valid", "test")
    assert problem.statement.startswith("theorem mathd_algebra_10") and problem.statement.endswith(":= by")
    assert problem.header.startswith("import Mathlib") and problem.informal
    assert problem.target().name == "mathd_algebra_10"


def test_unknown_minif2f_name_suggests() -> None:
    with pytest.raises(DatasetError, match="did you mean mathd_algebra_188"):
        Problem.from_minif2f("mathd_algebra_18")


@pytest.mark.parametrize(
    ("text", "statement"),
    [
        ("theorem foo (x : Nat) : x = x := by\n  sorry", "theorem foo (x : Nat) : x = x := by"),
        ("theorem foo (x : Nat) : x = x", "theorem foo (x : Nat) : x = x := by"),
        ("theorem foo (x : Nat) : x = x :=", "theorem foo (x : Nat) : x = x :="),
        ("theorem foo (x : Nat) : x = x := rfl", "theorem foo (x : Nat) : x = x :="),
        ("theorem foo (x : Nat := 3) : x = x := by rfl", "theorem foo (x : Nat := 3) : x = x := by"),
        ("lemma bar : True := by\n  trivial", "lemma bar : True := by"),
    ],
)
def test_from_statement(text: str, statement: str) -> None:
    problem = Problem.from_statement(text)
    assert problem.statement == statement
    assert problem.header == DEFAULT_HEADER  # a bare statement gets the MiniF2F header
    assert problem.term_mode == statement.endswith(":=")


def test_from_statement_keeps_its_header() -> None:
    problem = Problem.from_statement("prelude\ninductive A where\n  | a\n\n-- theorem fake : no\ntheorem foo : A :=")
    assert problem.header == "prelude\ninductive A where\n  | a\n\n-- theorem fake : no\n"
    assert problem.name == "foo" and problem.statement == "theorem foo : A :="


def test_statement_without_declaration_is_an_error() -> None:
    with pytest.raises(DatasetError, match="no 'theorem'"):
        Problem.from_statement("1 + 1 = 2")


def test_from_lean_file(tmp_path: Path) -> None:
    path = tmp_path / "F.lean"
    path.write_text(
        "import Mathlib\n\ntheorem first : True := by trivial\n\n/-- doc -/\ntheorem second (n : Nat) :\n"
        "    n + 0 = n := by\n  simp\n\ntheorem third : True := trivial\n",
        encoding="utf-8",
    )
    second = Problem.from_lean_file(path, "second")
    assert second.statement == "theorem second (n : Nat) :\n    n + 0 = n := by"
    assert second.header.endswith("theorem first : True := by trivial\n\n/-- doc -/\n")
    third = Problem.from_lean_file(path, "third")
    assert third.statement == "theorem third : True :=" and third.term_mode
    with pytest.raises(DatasetError, match="theorems in the file: first, second, third"):
        Problem.from_lean_file(path, "fourth")
    with pytest.raises(DatasetError, match="does not exist"):
        Problem.from_lean_file(tmp_path / "missing.lean", "x")


def test_example_becomes_a_named_theorem() -> None:
    assert Problem.from_statement("example : True := by trivial").statement == "theorem goal : True := by"
    named = Problem.from_statement("example (n : Nat) : n = n :=", name="refl_n")
    assert (named.name, named.statement) == ("refl_n", "theorem refl_n (n : Nat) : n = n :=")
