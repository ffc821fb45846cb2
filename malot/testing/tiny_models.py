"""Tiny random-weight models built fully offline, for tests of the LLM backends (a fixture, not a real model).

:func:`build_tiny_llama` and :func:`build_tiny_codegen` train a small byte-level BPE tokenizer with ``tokenizers``
on Lean-like text (the MiniF2F statements and solved proofs shipped with malot plus generated tactic lines), then
save a seeded random-weight ``LlamaForCausalLM`` / ``CodeGenForCausalLM`` with ``save_pretrained``. The same
arguments give byte-identical tokenizers and identical weights. The tokenizer knows CodeGen2's infill sentinels
(``<mask_1>``, ``<sep>``, ``<eom>``, ``<|endoftext|>``) and ChatML turn markers used by its chat template.

The Llama model is small enough for vLLM's CPU build (head size 32, the smallest its CPU attention accepts).
``malot dev make-tiny-model DIR`` runs :func:`build_tiny_models`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "CHAT_TEMPLATE",
    "SPECIAL_TOKENS",
    "build_tiny_codegen",
    "build_tiny_llama",
    "build_tiny_models",
    "lean_like_corpus",
    "train_tokenizer",
]

#: Special tokens of the tiny tokenizer: end of text, padding, CodeGen2 infill sentinels, ChatML markers.
SPECIAL_TOKENS = ["<|endoftext|>", "<pad>", "<mask_1>", "<mask_2>", "<sep>", "<eom>", "<|im_start|>", "<|im_end|>"]

#: A ChatML chat template (the format Qwen-style provers use).
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

ModelKind = Literal["llama", "codegen"]

#: Bumped whenever the builder's output changes, so cached builds (``build_tiny_models``) are rebuilt.
BUILD_VERSION = "1"

_TACTICS = ["intro h", "simp", "linarith", "nlinarith [sq_nonneg (a - b)]", "norm_num", "omega", "ring_nf", "exact h"]


def lean_like_corpus(seed: int = 0) -> Iterator[str]:
    """Lean-like training text: shipped MiniF2F statements and proofs, then seeded synthetic theorems."""
    data = resources.files("malot.data")
    for name in ("minif2f/minif2f.jsonl", "demos/minif2f_valid_solved.jsonl"):
        path = data.joinpath(name)
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            for key in ("formal_statement", "informal_statement", "statement", "proof", "informal", "header"):
                value = record.get(key)
                if isinstance(value, str) and value:
                    yield value
    rng = random.Random(seed)
    for i in range(2000):
        a, b = rng.randint(0, 99), rng.randint(0, 99)
        tactics = "\n  ".join(rng.sample(_TACTICS, 3))
        yield f"theorem t{i} (a b : ℕ) (h : a = {a}) : a + {b} = {a + b} := by\n  {tactics}\n"
        yield f"def f{i}(x):\n    return x * {a} + {b}\n"


def train_tokenizer(vocab_size: int = 1024, seed: int = 0) -> Any:
    """Train a byte-level BPE tokenizer on :func:`lean_like_corpus` and wrap it as a transformers fast tokenizer."""
    import importlib

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tf: Any = importlib.import_module("transformers")

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(lean_like_corpus(seed), trainer=trainer)
    fast = tf.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        pad_token="<pad>",
        additional_special_tokens=SPECIAL_TOKENS[2:],
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _build(kind: ModelKind, out_dir: Path, vocab_size: int, seed: int) -> Path:
    import importlib

    import torch

    tf: Any = importlib.import_module("transformers")  # typed loosely: transformers' own hints are partial
    tokenizer: Any = train_tokenizer(vocab_size, seed)
    vocab = len(tokenizer)
    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    pad = tokenizer.convert_tokens_to_ids("<pad>")
    torch.manual_seed(seed)
    model: Any
    if kind == "llama":
        config = tf.LlamaConfig(
            vocab_size=vocab,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=32,
            max_position_embeddings=1024,
            bos_token_id=eos,
            eos_token_id=eos,
            pad_token_id=pad,
            tie_word_embeddings=False,
            torch_dtype="float32",
        )
        model = tf.LlamaForCausalLM(config)
    else:
        config = tf.CodeGenConfig(
            vocab_size=vocab,
            n_positions=1024,
            n_ctx=1024,
            n_embd=128,
            n_layer=2,
            n_head=4,  # CodeGen splits heads into 4 model-parallel groups
            rotary_dim=16,
            bos_token_id=eos,
            eos_token_id=eos,
            pad_token_id=pad,
            tie_word_embeddings=False,
        )
        model = tf.CodeGenForCausalLM(config)
    # Random init is small; widen the logits so sampling is not uniform noise and greedy runs are distinctive.
    with torch.no_grad():
        head = model.get_output_embeddings()
        assert head is not None
        head.weight.mul_(20.0)
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.generation_config = tf.GenerationConfig(bos_token_id=eos, eos_token_id=eos, pad_token_id=pad)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def build_tiny_llama(out_dir: str | Path, *, vocab_size: int = 1024, seed: int = 0) -> Path:
    """Save a tiny random-weight Llama-architecture model with its tokenizer to ``out_dir``; return the folder."""
    return _build("llama", Path(out_dir), vocab_size, seed)


def build_tiny_codegen(out_dir: str | Path, *, vocab_size: int = 1024, seed: int = 0) -> Path:
    """Save a tiny random-weight CodeGen model (CodeGen2 sentinels in its tokenizer) to ``out_dir``."""
    return _build("codegen", Path(out_dir), vocab_size, seed)


def build_tiny_models(out_dir: str | Path, *, seed: int = 0) -> dict[str, Path]:
    """Build both tiny models under ``out_dir/llama`` and ``out_dir/codegen``, reusing complete existing builds."""
    root = Path(out_dir)
    out: dict[str, Path] = {}
    for kind, builder in (("llama", build_tiny_llama), ("codegen", build_tiny_codegen)):
        folder = root / kind
        marker = folder / ".malot-tiny-complete"
        stamp = f"{BUILD_VERSION}:{seed}"
        if not marker.is_file() or marker.read_text(encoding="utf-8").strip() != stamp:
            builder(folder, seed=seed)
            marker.write_text(stamp, encoding="utf-8")
        out[kind] = folder
    return out
