"""``malot verify``: verdicts, flags, JSON, screen-only, and exit codes 0 / 1 / 2; plus the Lean doctor checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from malot.cli.app import main
from malot.config import Settings

PRELUDE = """prelude
inductive MyNat where
  | zero : MyNat
  | succ : MyNat → MyNat
inductive Eq' {α : Sort u} (a : α) : α → Prop where
  | refl : Eq' a a
"""


@pytest.fixture(autouse=True)
def _no_ambient_lean(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("MALOT_LEAN", "MALOT_PROJECT", "MALOT_KIMINA", "MALOT_CONFIG"):
        monkeypatch.delenv(var, raising=False)


@pytest.mark.lean
def test_verify_file_accepted_and_rejected(lean_exe: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.lean"
    good.write_text(PRELUDE + "\ntheorem foo : Eq' MyNat.zero MyNat.zero := Eq'.refl\n")
    bad = tmp_path / "bad.lean"
    bad.write_text(PRELUDE + "\ntheorem foo : Eq' MyNat.zero (MyNat.succ MyNat.zero) := Eq'.refl\n")
    assert main(["verify", str(good), "--lean", str(lean_exe)]) == 0
    out = capsys.readouterr().out
    assert "accepted" in out and "target_declared" in out and "axioms: (none)" in out
    assert main(["verify", str(bad), "--lean", str(lean_exe), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["accepted"] is False and data["flags"]["no_errors"] is False
    assert any("Type mismatch" in m["data"] for m in data["messages"])


@pytest.mark.lean
def test_verify_statement_and_proof(lean_exe: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    header = tmp_path / "header.lean"
    header.write_text(PRELUDE)
    args = ["verify", "--header", f"@{header}", "--statement", "theorem foo : Eq' MyNat.zero MyNat.zero :="]
    assert main([*args, "--proof", "Eq'.refl", "--lean", str(lean_exe), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["accepted"] and data["axioms"] == [] and "file" in data["backend_choice"]


def test_screen_only_needs_no_lean(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["verify", "--statement", "theorem t (a : Nat) : a = a := by", "--screen-only"]
    assert main([*args, "--proof", "rfl"]) == 0
    assert main([*args, "--proof", "sorry", "--json"]) == 1
    out = capsys.readouterr().out
    data = json.loads(out[out.index("{") :])
    assert data["ok"] is False and data["rules"] == ["sorry"]


def test_errors_exit_2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no lean anywhere
    f = tmp_path / "x.lean"
    f.write_text("theorem t : True := trivial\n")
    assert main(["verify", str(f)]) == 2
    assert "no Lean found" in capsys.readouterr().err
    assert main(["verify", "--statement", "theorem t : True := by"]) == 2  # no proof: usage error
    assert main(["verify", str(tmp_path / "missing.lean")]) == 2


def test_doctor_reports_lean_backend_project_and_sandbox() -> None:
    from malot.lean.doctor import checks

    names = {c.name: c for c in checks(Settings())}
    assert "backend in effect" in names and "sandbox" in names and "lean4checker" in names
    assert any(n.startswith("project") for n in names)
    assert names["REPL"].status == "missing"  # lean_project/ is not built here
    assert "lake build repl" in names["REPL"].hint
