"""Hugging Face causal-LM plumbing for the tools that work on a prover model (MaskLLM export, DAS layer skipping)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from malot.errors import ToolError

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["decoder_layers", "lm_batches", "lm_loss", "load_lm", "load_text_lines"]


def load_text_lines(path: str | Path) -> list[str]:
    """Texts from a ``.txt`` file (one a line) or a ``.jsonl`` file (field ``text`` or ``prompt`` + ``completion``)."""
    file = Path(path)
    if not file.is_file():
        raise ToolError(f"text data {file} does not exist", hint="pass a .txt (one text a line) or .jsonl file")
    texts: list[str] = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        if file.suffix == ".jsonl":
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ToolError(f"{file}:{number}: not JSON ({exc.msg})") from None
            if "text" in record:
                texts.append(str(record["text"]))
            elif "prompt" in record:
                texts.append(f"{record['prompt']} {record.get('completion', '')}".strip())
            else:
                raise ToolError(f"{file}:{number}: a JSONL record needs a 'text' or 'prompt' field")
        else:
            texts.append(line.strip())
    if not texts:
        raise ToolError(f"text data {file} holds no texts", hint="give at least one non-empty line")
    return texts


def load_lm(folder: str | Path) -> tuple[nn.Module, Any]:
    """Load a local Hugging Face causal LM (float32, CPU) and its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(folder)
    if not (path / "config.json").is_file():
        raise ToolError(f"{path} is not a Hugging Face model folder (no config.json)", hint="pass a local model folder")
    model: nn.Module = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def lm_batches(
    tokenizer: Any, texts: Sequence[str], batch_size: int, max_length: int, seed: int
) -> Callable[[int], tuple[torch.Tensor, torch.Tensor]]:
    """A function ``step -> (input_ids, attention_mask)`` drawing a seeded random batch of ``texts`` each step."""
    import torch

    generator = torch.Generator().manual_seed(seed)

    def batch(_step: int) -> tuple[torch.Tensor, torch.Tensor]:
        pick = torch.randint(len(texts), (batch_size,), generator=generator).tolist()
        enc = tokenizer(
            [texts[i] for i in pick], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        )
        return enc["input_ids"], enc["attention_mask"]

    return batch


def lm_loss(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over the non-padding positions."""
    import torch.nn.functional as F

    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1]
    targets = input_ids[:, 1:].masked_fill(attention_mask[:, 1:] == 0, -100)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=-100)


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The list of transformer blocks of a Hugging Face decoder-only model (``model.layers``, ``transformer.h``)."""
    from torch import nn

    for path in ("model.layers", "transformer.h", "model.decoder.layers", "gpt_neox.layers"):
        obj: Any = model
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if isinstance(obj, nn.ModuleList):
            return obj
    raise ToolError(
        f"cannot find the transformer blocks of {type(model).__name__}",
        hint="supported layouts: model.layers (Llama, Qwen, Mistral), transformer.h (GPT-2, CodeGen)",
    )
