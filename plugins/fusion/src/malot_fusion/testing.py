"""Tiny offline model trios for fusion tests, demos and benchmarks (a fixture, not real models).

:func:`build_fusion_models` saves three Llama models that share one BPE tokenizer (malot's tiny Lean-like tokenizer):
a wider ``large`` model, a small ``base`` and a small ``expert`` made by fine-tuning the base for a few steps on a
Lean tactic pattern, so the expert's shift from its base is a real fine-tuning shift, not noise.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

__all__ = ["EXPERT_TEXT", "build_fusion_models"]

#: What the small expert is fine-tuned on: it learns to close goals with ``norm_num``.
EXPERT_TEXT = "theorem t (a b : ℕ) (h : a = 1) : a + 1 = 2 := by\n  norm_num\n"

_MARKER = ".malot-fusion-complete"


def _llama(tf: Any, tokenizer: Any, hidden: int, layers: int, seed: int) -> Any:
    import torch

    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    pad = tokenizer.convert_tokens_to_ids("<pad>")
    torch.manual_seed(seed)
    config = tf.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=max(2, hidden // 32),
        num_key_value_heads=1,
        head_dim=32,
        max_position_embeddings=1024,
        bos_token_id=eos,
        eos_token_id=eos,
        pad_token_id=pad,
        tie_word_embeddings=False,
    )
    model = tf.LlamaForCausalLM(config)
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(20.0)
    model.generation_config = tf.GenerationConfig(bos_token_id=eos, eos_token_id=eos, pad_token_id=pad)
    return model


def build_fusion_models(
    out_dir: str | Path, *, large_hidden: int = 128, large_layers: int = 4, finetune_steps: int = 30, seed: int = 0
) -> dict[str, Path]:
    """Save ``large``, ``base`` and ``expert`` under ``out_dir`` (reusing a complete earlier build); return paths."""
    import torch

    from malot.testing.tiny_models import train_tokenizer

    root = Path(out_dir)
    paths = {name: root / name for name in ("large", "base", "expert")}
    stamp = f"{large_hidden}-{large_layers}-{finetune_steps}-{seed}"
    marker = root / _MARKER
    if marker.is_file() and marker.read_text(encoding="utf-8") == stamp:
        return paths
    tf: Any = importlib.import_module("transformers")
    tokenizer = train_tokenizer(1024, 0)
    large = _llama(tf, tokenizer, large_hidden, large_layers, seed + 1)
    base = _llama(tf, tokenizer, 64, 2, seed + 2)
    expert = _llama(tf, tokenizer, 64, 2, seed + 2)
    expert.load_state_dict(base.state_dict())
    ids = torch.tensor([tokenizer(EXPERT_TEXT)["input_ids"]])
    optimiser = torch.optim.Adam(expert.parameters(), lr=3e-3)
    expert.train()
    for _ in range(finetune_steps):
        loss = expert(input_ids=ids, labels=ids).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    for name, model in (("large", large), ("base", base), ("expert", expert)):
        model.eval()
        model.save_pretrained(paths[name])
        tokenizer.save_pretrained(paths[name])
    marker.write_text(stamp, encoding="utf-8")
    return paths
