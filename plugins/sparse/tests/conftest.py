"""Settings and fixtures for the sparse plugin tests: offline Hugging Face, one CPU thread, a tiny Llama folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

WORDS = ["theorem", "lemma", "proof", "by", "simp", "intro", "exact", "rfl", "nat", "add", "zero", "succ", ":=", "."]


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny Llama (hidden 32, 3 layers) with a word-level tokenizer, saved as a model folder."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny_lm")
    specials = ["<pad>", "<unk>", "<s>", "</s>"]
    vocab = {tok: i for i, tok in enumerate([*specials, *WORDS])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=False,
        initializer_range=0.2,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session")
def lm_texts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small text file of Lean-like lines for the causal-LM tools."""
    file = tmp_path_factory.mktemp("texts") / "texts.txt"
    lines = [
        "theorem add zero := by simp .",
        "lemma succ nat := by intro exact rfl .",
        "theorem nat add := proof by rfl .",
        "lemma zero add := by exact simp .",
    ]
    file.write_text("\n".join(lines * 4) + "\n", encoding="utf-8")
    return file
