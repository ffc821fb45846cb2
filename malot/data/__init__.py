"""Data shipped with malot: MiniF2F and PutnamBench (Lean 4) and solved demonstrations; see each folder's README
and LICENSE."""

from __future__ import annotations

from pathlib import Path

__all__ = ["DATA_DIR", "DEMOS_JSONL", "MINIF2F_JSONL", "PUTNAMBENCH_JSONL"]

DATA_DIR = Path(__file__).resolve().parent
MINIF2F_JSONL = DATA_DIR / "minif2f" / "minif2f.jsonl"
DEMOS_JSONL = DATA_DIR / "demos" / "minif2f_valid_solved.jsonl"
PUTNAMBENCH_JSONL = DATA_DIR / "putnambench" / "putnambench.jsonl"
