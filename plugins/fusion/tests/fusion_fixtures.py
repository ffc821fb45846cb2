"""Tiny offline Llama models for the fusion tests (imported by conftest and the tests)."""

from __future__ import annotations

from typing import Any

VOCAB = 48


def tiny_llama(seed: int, *, hidden: int = 32, layers: int = 2, vocab: int = VOCAB) -> Any:
    """A randomly initialised (seeded) tiny Llama causal LM; different seeds give different distributions."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():  # sharpen the random logits so distributions differ visibly
        model.lm_head.weight.mul_(8.0)
    return model
