"""The shared extraction: the last Lean block wins, an unclosed final block counts, degenerate outputs fail fast."""

from __future__ import annotations

from malot.provers.extraction import extract_infill, extract_lean, find_lean_blocks, trim_repetition

STATEMENT = "theorem t : True := by"


def test_last_block_wins() -> None:
    text = f"Plan:\n```lean4\n{STATEMENT}\n  sorry\n```\nBetter:\n```lean\n{STATEMENT}\n  trivial\n```\nDone."
    result = extract_lean(text)
    assert result.ok and result.closed
    assert result.code == f"{STATEMENT}\n  trivial\n"


def test_unclosed_final_block_counts() -> None:
    result = extract_lean(f"```lean4\n{STATEMENT}\n  trivial")
    assert result.code == f"{STATEMENT}\n  trivial\n" and not result.closed


def test_prefill_is_continued() -> None:
    prefill = f"```lean4\nimport Mathlib\n{STATEMENT}\n"
    result = extract_lean("  trivial\n```\nextra words", prefill=prefill)
    assert result.code == f"import Mathlib\n{STATEMENT}\n  trivial\n" and result.closed


def test_fence_at_line_end_closes_the_block() -> None:
    result = extract_lean(f"```lean4\n{STATEMENT}\n  trivial```")
    assert result.code == f"{STATEMENT}\n  trivial\n" and result.closed


def test_no_block_empty_output_and_empty_block() -> None:
    assert extract_lean("The proof is by trivial.").reason == "no Lean code block"
    assert extract_lean("   \n").reason == "empty output"
    assert extract_lean("", prefill=f"```lean4\n{STATEMENT}\n").reason == "empty output"
    assert extract_lean("```lean4\n\n```").reason == "empty Lean code block"
    assert extract_lean("```python\nprint(1)\n```").reason == "no Lean code block"


def test_truncated_loop_is_cut_to_one_copy() -> None:
    looping = "  simp\n" + "  norm_num\n  linarith\n" * 30 + "  norm_n"
    result = extract_lean(looping, prefill=f"```lean4\n{STATEMENT}\n", finish_reason="length")
    assert result.truncated and result.repeated
    assert result.code == f"{STATEMENT}\n  simp\n  norm_num\n  linarith\n"


def test_repeated_lines_are_kept_when_not_truncated() -> None:
    body = "  constructor\n  constructor\n  constructor\n  trivial"
    result = extract_lean(body, prefill=f"```lean4\n{STATEMENT}\n", finish_reason="stop")
    assert not result.repeated and result.code is not None and result.code.count("constructor") == 3


def test_trim_repetition_without_a_loop() -> None:
    assert trim_repetition("a\nb\nc\n") == ("a\nb\nc\n", False)


def test_infill() -> None:
    assert extract_infill("prefix\n", "  trivial", "\n").code == "prefix\n  trivial\n"
    assert extract_infill("prefix\n", "  \n").reason == "empty output"


def test_block_positions() -> None:
    text = "x\n```lean4\na\n```\n```lean4\nb"
    blocks = find_lean_blocks(text)
    assert [(b.code, b.closed) for b in blocks] == [("a", True), ("b", False)]
    assert text[blocks[1].fence_start :].startswith("```lean4\nb")
