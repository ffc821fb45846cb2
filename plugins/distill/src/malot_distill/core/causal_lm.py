"""Hugging Face causal-LM helpers for the distill tools: load a model folder, read texts, next-token logits."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from malot.errors import ToolError

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["is_model_folder", "load_causal_lm", "load_texts", "load_tokenizer", "next_token_batch"]


def is_model_folder(path: str | Path) -> bool:
    """True for a folder holding a Hugging Face ``config.json``."""
    return (Path(path) / "config.json").is_file()


def load_causal_lm(folder: str | Path) -> nn.Module:
    """Load a causal LM from a local folder in float32 on the CPU."""
    import torch
    from transformers import AutoModelForCausalLM

    if not is_model_folder(folder):
        raise ToolError(f"{folder} is not a Hugging Face model folder (no config.json)", hint="pass a model folder")
    model: nn.Module = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    return model


def load_tokenizer(folder: str | Path) -> Any:
    """The tokenizer saved in a model folder."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))


def load_texts(path: str | Path) -> list[str]:
    """Texts from a ``.txt`` file (one per line) or ``.jsonl`` (``text``, or ``prompt`` + ``completion``)."""
    file = Path(path)
    if not file.is_file():
        raise ToolError(f"text file {file} does not exist", hint="pass a .txt (one text a line) or .jsonl file")
    texts: list[str] = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        if file.suffix == ".jsonl":
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ToolError(f"{file}:{number} is not JSON: {exc}") from exc
            if "text" in record:
                texts.append(str(record["text"]))
            elif "prompt" in record:
                texts.append(f"{record['prompt']}{record.get('completion', '')}")
            else:
                raise ToolError(f"{file}:{number}: a record needs a 'text' or 'prompt' field")
        else:
            texts.append(line)
    if not texts:
        raise ToolError(f"text file {file} holds no texts", hint="add at least one non-empty line")
    return texts


def next_token_batch(
    tokenizer: Any, texts: Sequence[str], max_length: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Tokenize texts; return ``(input_ids, attention_mask, targets)`` where ``targets[:, i]`` is token ``i + 1``
    and positions without a next token (padding, the last token) are ``-100``."""
    enc = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    targets = ids.clone()
    targets[mask == 0] = -100
    targets = targets[:, 1:]
    return ids, mask, targets
