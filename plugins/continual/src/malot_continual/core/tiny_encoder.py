"""A tiny random-weight sentence encoder (BERT, mean pooling, unit length) built offline with MiniLM's tokenizer.

It stands in for an *old*, weaker retrieval encoder in the BT² tests and benchmark: its embeddings are essentially
random projections of bag-of-token averages. It is a real sentence-transformers folder, loadable by malot's
retrieval code like any other encoder.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["build_tiny_sentence_encoder"]


def build_tiny_sentence_encoder(out_dir: str | Path, *, dim: int = 32, seed: int = 0) -> Path:
    """Write a 1-layer BERT sentence-transformers model of width ``dim`` with random weights into ``out_dir``."""
    import torch
    from sentence_transformers import SentenceTransformer

    try:  # sentence-transformers >= 6 moved the modules
        from sentence_transformers.sentence_transformer import modules as models
    except ImportError:  # pragma: no cover - older releases
        from sentence_transformers import models  # type: ignore[attr-defined,no-redef]
    from transformers import AutoTokenizer, BertConfig, BertModel

    from malot.retrieval.encoders import default_encoder_path

    folder = Path(out_dir)
    bert_dir = folder / "bert"
    tokenizer = AutoTokenizer.from_pretrained(str(default_encoder_path()), local_files_only=True)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=dim,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=2 * dim,
        max_position_embeddings=256,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(str(bert_dir))  # type: ignore[no-untyped-call]
    tokenizer.save_pretrained(str(bert_dir))
    word = models.Transformer(str(bert_dir), max_seq_length=128)
    width = getattr(word, "get_embedding_dimension", None) or word.get_word_embedding_dimension
    pooling = models.Pooling(width(), pooling_mode="mean")
    SentenceTransformer(modules=[word, pooling, models.Normalize()], device="cpu").save(str(folder))
    return folder
