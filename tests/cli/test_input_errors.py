"""Bad input on the command line is one line and exit 2: text that is not UTF-8, and out-of-range sample counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from malot.cli.app import main

GARBAGE = b"theorem t : True := \xff\xfe trivial\n"


@pytest.fixture
def garbage(tmp_path: Path) -> Path:
    path = tmp_path / "garbage.lean"
    path.write_bytes(GARBAGE)
    return path


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def test_verify_a_file_that_is_not_utf8(garbage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(garbage)]) == 2
    assert "is not UTF-8 text (byte 0xff at offset 20)" in _one_line_error(capsys)


def test_verify_proof_from_a_file_that_is_not_utf8(garbage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "--statement", "theorem t : True := by", "--proof", f"@{garbage}"]) == 2
    assert "--proof" in _one_line_error(capsys)


def test_verify_a_lone_surrogate_in_the_proof(capsys: pytest.CaptureFixture[str]) -> None:
    # what Python makes of a byte that is not UTF-8 in argv (surrogateescape)
    assert main(["verify", "--statement", "theorem t : True := by", "--proof", "trivial \udcff"]) == 2
    assert "--proof is not valid UTF-8 text" in _one_line_error(capsys)


def test_prove_a_file_that_is_not_utf8(garbage: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prove", "--file", str(garbage), "--theorem", "t", "--out", str(tmp_path / "o")]) == 2
    assert "is not UTF-8 text" in _one_line_error(capsys)


def test_prove_a_statement_that_is_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prove", "theorem t : True := by \udcff", "--out", str(tmp_path / "o")]) == 2
    assert "the statement is not valid UTF-8 text" in _one_line_error(capsys)


@pytest.mark.parametrize("command", [["prove", "theorem t : True := by"], ["eval", "minif2f"]])
def test_samples_are_bounded_like_the_http_api(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*command, "--samples", "1025", "--out", str(tmp_path / "o")]) == 2
    assert "1025 is not in the range 1<=x<=1024" in _one_line_error(capsys)
    assert not (tmp_path / "o").exists()


@pytest.mark.lean
def test_verify_file_uses_the_given_trusted_header(
    tmp_path: Path, lean_exe: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.provers.helpers import load_suite

    record = next(r for r in load_suite() if r["name"] == "or_swap")
    proof_file = tmp_path / "Proof.lean"
    proof_file.write_text(record["header"] + record["statement"] + "\n  " + record["proof"] + "\n", encoding="utf-8")
    assert main(["verify", str(proof_file), "--lean", str(lean_exe)]) == 0
    capsys.readouterr()
    # a trusted header without the file's inductive types: the same file no longer checks
    assert main(["verify", str(proof_file), "--lean", str(lean_exe), "--header", "prelude\n"]) == 1
    assert "rejected" in capsys.readouterr().out


def test_the_config_bounds_samples_too() -> None:
    from malot.config import load_settings
    from malot.errors import ConfigError

    with pytest.raises(ConfigError, match=r"from MALOT_PROVER__SAMPLES: config key 'prover.samples' = 100000"):
        load_settings(env={"MALOT_PROVER__SAMPLES": "100000"})
