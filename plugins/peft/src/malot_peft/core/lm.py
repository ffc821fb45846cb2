"""Causal-LM plumbing for the tools: load a local Hugging Face model folder, read texts, batch, next-token loss."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from malot.errors import ToolError

__all__ = [
    "build_tiny_decoder_folder",
    "load_causal_lm",
    "load_texts",
    "load_tokenizer",
    "next_token_loss",
    "sample_batch",
]


def load_texts(path: str | Path) -> list[str]:
    """Training texts: ``.txt`` (one a line) or ``.jsonl`` (``text``, or ``prompt`` + ``completion``)."""
    file = Path(path)
    if not file.is_file():
        raise ToolError(f"training data {file} does not exist", hint="pass a .txt or .jsonl file")
    texts: list[str] = []
    if file.suffix == ".jsonl":
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ToolError(f"{file}:{number} is not JSON: {exc.msg}", hint="one JSON object a line") from None
            text = row.get("text") if isinstance(row, dict) else None
            if text is None and isinstance(row, dict) and "prompt" in row:
                text = str(row["prompt"]) + str(row.get("completion", ""))
            if not isinstance(text, str):
                raise ToolError(f"{file}:{number} has no 'text' (or 'prompt'+'completion')")
            texts.append(text)
    else:
        texts = [line for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not texts:
        raise ToolError(f"training data {file} is empty", hint="give at least one non-empty text")
    return texts


def load_causal_lm(folder: str | Path) -> nn.Module:
    """Load a Hugging Face causal LM from a local folder in float32 on the CPU."""
    from transformers import AutoModelForCausalLM

    path = Path(folder)
    if not (path / "config.json").is_file():
        raise ToolError(f"{path} is not a Hugging Face model folder (no config.json)", hint="pass a local model folder")
    model: nn.Module = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
    return model


def load_tokenizer(folder: str | Path) -> Any:
    """The tokenizer saved in a model folder (a pad token is set to EOS when it has none)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def sample_batch(
    tokenizer: Any, texts: Sequence[str], batch_size: int, max_length: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """A random right-padded batch ``(input_ids, attention_mask)`` of at most ``max_length`` tokens."""
    pick = torch.randint(len(texts), (batch_size,), generator=generator).tolist()
    tokenizer.padding_side = "right"
    enc = tokenizer([texts[i] for i in pick], padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]


def next_token_loss(logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over non-padding targets."""
    targets = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
    flat = logits[:, :-1].reshape(-1, logits.shape[-1])
    return torch.nn.functional.cross_entropy(flat, targets.reshape(-1), ignore_index=-100)


def build_tiny_decoder_folder(
    folder: str | Path, words: Sequence[str], *, hidden_size: int = 32, layers: int = 3, seed: int = 0
) -> Path:
    """Save a random tiny Llama-architecture LM with a whitespace word-level tokenizer over ``words``.

    For tests and examples: builds in well under a second, offline.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<s>", "</s>"]
    vocab = {token: index for index, token in enumerate([*specials, *dict.fromkeys(words)])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=core, pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=128,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)  # type: ignore[no-untyped-call]
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
