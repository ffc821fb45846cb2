"""Texts for the text-aware tools: read them from .txt/.jsonl files and embed them with the offline MiniLM."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from malot.errors import ToolError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["embed_texts", "read_records"]


def read_records(path: str | Path, fields: Sequence[str], id_field: str | None = None) -> tuple[list[str], list[str]]:
    """``(texts, ids)`` from a ``.txt`` (one text a line) or ``.jsonl`` (``fields`` joined by a newline) file."""
    file = Path(path)
    if not file.is_file():
        raise ToolError(f"text file {file} does not exist", hint="pass a .txt (one text a line) or .jsonl file")
    lines = [line for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        raise ToolError(f"{file} holds no texts", hint="pass a non-empty file")
    if file.suffix.lower() != ".jsonl":
        return lines, [str(i) for i in range(len(lines))]
    texts: list[str] = []
    ids: list[str] = []
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ToolError(f"{file}:{number} is not JSON: {exc.msg}", hint="one JSON object a line") from None
        missing = [f for f in fields if f not in record]
        if missing:
            raise ToolError(f"{file}:{number} lacks the field(s) {missing}", hint=f"its fields are {sorted(record)}")
        texts.append("\n".join(str(record[f]) for f in fields))
        ids.append(str(record.get(id_field, number - 1)) if id_field else str(number - 1))
    return texts, ids


@functools.lru_cache(maxsize=2)
def _encoder(model: str | None, batch_size: int) -> Any:
    from malot.retrieval.encoders import SentenceEncoder

    return SentenceEncoder(model, batch_size=batch_size)


def embed_texts(texts: Sequence[str], model: str | None = None, batch_size: int = 32) -> NDArray[np.float32]:
    """Unit-length sentence embeddings (default: malot's offline MiniLM, all-MiniLM-L6-v2; loaded once per process)."""
    out: NDArray[np.float32] = _encoder(model, batch_size).encode(list(texts))
    return out
