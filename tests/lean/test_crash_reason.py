"""A Lean crash names the memory limit only when one is set ("memory limit (None MB)" was printed before)."""

from __future__ import annotations

from pathlib import Path

from malot.lean.file_backend import LeanFileVerifier


def test_an_abort_without_a_memory_limit_does_not_invent_one(lean_exe: Path) -> None:
    unlimited = LeanFileVerifier(lean_exe, workers=1)
    result = unlimited._result("x", 134, b"", b"INTERNAL PANIC: out of memory", 0.1)
    assert result.status == "crash" and result.error is not None
    assert "None" not in result.error and "no memory limit is set" in result.error
    limited = LeanFileVerifier(lean_exe, workers=1, memory_limit_mb=512)
    assert "memory limit (512 MB)" in (limited._result("x", 134, b"", b"out of memory", 0.1).error or "")
