"""Settings for the peft plugin tests: offline Hugging Face, one CPU thread."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path

import pytest

WORDS = ["theorem", "lemma", "proof", "by", "simp", "rfl", "intro", "exact", "apply", "nat", "add", "zero"]


@pytest.fixture(scope="session")
def tiny_lm_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny Llama-style LM with a word-level tokenizer (built once per session)."""
    from malot_peft.core.lm import build_tiny_decoder_folder

    return build_tiny_decoder_folder(tmp_path_factory.mktemp("tiny_lm"), WORDS, hidden_size=32, layers=3)


@pytest.fixture(scope="session")
def text_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few short lean-like training texts, one a line."""
    lines = ["theorem add zero by simp", "lemma nat add by rfl", "proof intro exact zero", "theorem by apply add"] * 4
    path = tmp_path_factory.mktemp("texts") / "train.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
