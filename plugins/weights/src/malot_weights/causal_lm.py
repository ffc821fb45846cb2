"""Small helpers for the tools that train causal language models (LT-SFT, CLP-Transfer, Trans-LoRA).

They load Hugging Face model folders, read plain-text or JSONL training data, batch it, compute the next-token loss,
and build tiny word-level models offline (for tests and benchmarks, no hub download).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from malot.errors import ToolError

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "batch_token_ids",
    "build_tiny_lm_folder",
    "build_word_tokenizer",
    "causal_lm_loss",
    "load_causal_lm",
    "load_texts",
    "load_tokenizer",
]


def load_texts(path: str | Path) -> list[str]:
    """Read training texts: a ``.jsonl`` file (field ``text``, or ``prompt`` + ``completion``) or one text a line."""
    file = Path(path)
    if not file.is_file():
        raise ToolError(f"training data {file} does not exist", hint="pass a .txt (one text a line) or .jsonl file")
    texts: list[str] = []
    for line in file.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        if file.suffix == ".jsonl":
            record = json.loads(line)
            if "text" in record:
                texts.append(str(record["text"]))
            elif "prompt" in record:
                texts.append(f"{record['prompt']} {record.get('completion', '')}".strip())
            else:
                raise ToolError(f"{file}: a JSONL record needs a 'text' or 'prompt' field")
        else:
            texts.append(line.strip())
    if not texts:
        raise ToolError(f"training data {file} is empty")
    return texts


def load_causal_lm(folder: str | Path) -> nn.Module:
    """Load a Hugging Face causal LM from a local folder, in float32, on the CPU, in train mode."""
    import torch
    from transformers import AutoModelForCausalLM

    path = Path(folder)
    if not (path / "config.json").is_file():
        raise ToolError(f"{path} is not a Hugging Face model folder (no config.json)", hint="pass a local model folder")
    model: nn.Module = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
    model.train()
    return model


def load_tokenizer(folder: str | Path) -> Any:
    """Load the tokenizer saved in a Hugging Face model folder."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))


def batch_token_ids(tokenizer: Any, texts: Sequence[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokenize ``texts`` into a right-padded ``(input_ids, attention_mask)`` pair of at most ``max_length`` tokens."""
    encoded = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return encoded["input_ids"], encoded["attention_mask"]


def causal_lm_loss(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over the non-padding positions."""
    import torch.nn.functional as F

    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1]
    targets = input_ids[:, 1:].masked_fill(attention_mask[:, 1:] == 0, -100)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)


def build_word_tokenizer(words: Sequence[str]) -> Any:
    """A whitespace word-level fast tokenizer over ``words`` (plus ``<pad>``, ``<unk>``, ``<s>``, ``</s>``)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<s>", "</s>"]
    vocab = {token: index for index, token in enumerate([*specials, *dict.fromkeys(words)])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=core, pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )


def build_tiny_lm_folder(
    folder: str | Path,
    words: Sequence[str],
    *,
    hidden_size: int = 32,
    layers: int = 2,
    heads: int = 2,
    seed: int = 0,
    tie_embeddings: bool = True,
    initializer_range: float = 0.02,
) -> Path:
    """Save a randomly initialised tiny Llama-architecture LM with a word-level tokenizer into ``folder``.

    ``initializer_range`` is the std of the initial weights; tiny models with the usual 0.02 have such small
    (tied) embeddings that their logits stay near uniform unless the embeddings themselves are trained.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_word_tokenizer(words)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=128,
        tie_word_embeddings=tie_embeddings,
        initializer_range=initializer_range,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)  # type: ignore[no-untyped-call]
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path
