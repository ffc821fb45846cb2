"""The UDR dual encoder: query and candidate encoders (both from MiniLM by default), scored by dot product."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from malot.errors import RetrievalError
from malot.retrieval.encoders import load_sentence_transformer
from malot.retrieval.text import LEAN_PROOF_INSTRUCTION

__all__ = ["DualEncoder"]

_CONFIG = "udr.json"


class DualEncoder:
    """Two sentence-transformers encoders; ``score(q, c) = scale * <q_emb, c_emb>`` (embeddings are unit length).

    ``instruction`` is the task instruction prefixed to queries and candidates; ``path`` is where the model was
    loaded from or last saved (``None`` for a fresh one).
    """

    def __init__(
        self,
        query_encoder: Any,
        candidate_encoder: Any,
        *,
        scale: float = 20.0,
        instruction: str = LEAN_PROOF_INSTRUCTION,
        path: Path | None = None,
    ) -> None:
        self.query_encoder = query_encoder
        self.candidate_encoder = candidate_encoder
        self.scale = scale
        self.instruction = instruction
        self.path = path

    @classmethod
    def from_pretrained(
        cls,
        model: str | Path | None = None,
        *,
        device: str = "cpu",
        max_seq_length: int | None = 256,
        scale: float = 20.0,
        instruction: str = LEAN_PROOF_INSTRUCTION,
    ) -> DualEncoder:
        """Both encoders initialised from one sentence-transformers model (default: offline MiniLM)."""
        base = load_sentence_transformer(model, device=device, max_seq_length=max_seq_length)
        return cls(base, copy.deepcopy(base), scale=scale, instruction=instruction)

    @classmethod
    def load(cls, directory: str | Path, *, device: str = "cpu") -> DualEncoder:
        """Load a dual encoder written by :meth:`save`."""
        folder = Path(directory)
        config_path = folder / _CONFIG
        if not config_path.is_file():
            raise RetrievalError(
                f"{folder} is not a trained UDR model (no {_CONFIG})", hint="train one with 'malot retrieval train'"
            )
        config = json.loads(config_path.read_text(encoding="utf-8"))
        length = config.get("max_seq_length")
        query = load_sentence_transformer(folder / "query_encoder", device=device, max_seq_length=length)
        cand = load_sentence_transformer(folder / "candidate_encoder", device=device, max_seq_length=length)
        return cls(query, cand, scale=float(config["scale"]), instruction=str(config["instruction"]), path=folder)

    def save(self, directory: str | Path) -> Path:
        """Write both encoders and ``udr.json`` into ``directory``."""
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        self.query_encoder.save(str(folder / "query_encoder"))
        self.candidate_encoder.save(str(folder / "candidate_encoder"))
        config = {
            "scale": self.scale,
            "instruction": self.instruction,
            "max_seq_length": self.query_encoder.max_seq_length,
        }
        (folder / _CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        self.path = folder
        return folder

    @staticmethod
    def is_saved_model(directory: str | Path) -> bool:
        """Whether ``directory`` holds a saved dual encoder."""
        return (Path(directory) / _CONFIG).is_file()

    def parameters(self) -> list[Any]:
        """Trainable parameters of both encoders."""
        return [*self.query_encoder.parameters(), *self.candidate_encoder.parameters()]

    def train(self, mode: bool = True) -> None:
        """Switch both encoders to training (dropout on) or evaluation mode."""
        self.query_encoder.train(mode)
        self.candidate_encoder.train(mode)

    @staticmethod
    def _forward(encoder: Any, texts: Sequence[str]) -> Any:
        prepare = getattr(encoder, "preprocess", None) or encoder.tokenize  # sentence-transformers >= 6 renamed it
        features = prepare(list(texts))
        device = encoder.device
        features = {k: v.to(device) if hasattr(v, "to") else v for k, v in features.items()}
        return encoder(features)["sentence_embedding"]

    def embed_queries(self, texts: Sequence[str]) -> Any:
        """Query embeddings as a torch tensor that carries gradients (for training)."""
        return self._forward(self.query_encoder, texts)

    def embed_candidates(self, texts: Sequence[str]) -> Any:
        """Candidate embeddings as a torch tensor that carries gradients (for training)."""
        return self._forward(self.candidate_encoder, texts)

    def encode_queries(self, texts: Sequence[str], batch_size: int = 32) -> Any:
        """Query embeddings as a float32 NumPy array (inference)."""
        return _encode(self.query_encoder, texts, batch_size)

    def encode_candidates(self, texts: Sequence[str], batch_size: int = 32) -> Any:
        """Candidate embeddings as a float32 NumPy array (inference)."""
        return _encode(self.candidate_encoder, texts, batch_size)


def _encode(encoder: Any, texts: Sequence[str], batch_size: int) -> Any:
    import numpy as np

    if not texts:
        return np.zeros((0, 0), np.float32)
    out = encoder.encode(list(texts), batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
    return np.asarray(out, dtype=np.float32)
