"""Exact inner-product vector indexes: FAISS when it is installed, NumPy otherwise, with the same results.

The vectors are the source of truth and are what gets saved (``vectors.npy`` plus ``index.json``), so an index
written on a machine with FAISS loads on one without it and vice versa. ``kind="flat"`` is exact brute-force search.
``kind="sq8"`` (FAISS only) is for very large corpora: it scans 8-bit scalar-quantised vectors (a quarter of the memory
traffic) for a shortlist of ``max(8k, 64)`` and re-scores the shortlist exactly, so returned scores are exact and the
top ``k`` is exact unless a true neighbour falls outside the shortlist. ``kind="auto"`` picks ``sq8`` from
:data:`SQ8_FROM` vectors up when FAISS is installed, else ``flat``.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any, Literal

from malot.errors import RetrievalError

__all__ = ["SQ8_FROM", "IndexBackend", "IndexKind", "VectorIndex", "faiss_available"]

IndexBackend = Literal["auto", "faiss", "numpy"]
IndexKind = Literal["auto", "flat", "sq8"]
#: Corpus size from which ``kind="auto"`` uses the quantised index with exact re-scoring.
SQ8_FROM = 50_000
_META = "index.json"
_VECTORS = "vectors.npy"


def faiss_available() -> bool:
    """Whether the ``faiss`` module can be imported here."""
    return importlib.util.find_spec("faiss") is not None


class VectorIndex:
    """A flat (exact) or 8-bit quantised inner-product index over row vectors.

    ``search`` returns, per query row, the ``k`` best scores and row ids, best first. Single-query FAISS searches
    run on one thread: on small machines OpenMP start-up costs more than it saves for one query.
    """

    def __init__(self, vectors: Any, *, backend: IndexBackend = "auto", kind: IndexKind = "flat") -> None:
        import numpy as np

        array = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
        if array.ndim != 2:
            raise RetrievalError(f"index vectors must be a 2-D array, got shape {array.shape}")
        if backend == "auto":
            backend = "faiss" if faiss_available() else "numpy"
        if backend == "faiss" and not faiss_available():
            raise RetrievalError("the FAISS index backend needs faiss", hint="pip install 'malot[retrieval]'")
        if kind == "auto":
            kind = "sq8" if backend == "faiss" and len(array) >= SQ8_FROM else "flat"
        if kind == "sq8" and backend != "faiss":
            raise RetrievalError("the sq8 index needs FAISS", hint="use kind='flat' or install faiss-cpu")
        self.vectors = array
        self.backend: Literal["faiss", "numpy"] = backend
        self.kind: Literal["flat", "sq8"] = kind
        self._faiss_index: Any = None
        if backend == "faiss":
            self._faiss_index = self._build_faiss(array, kind)

    @staticmethod
    def _build_faiss(array: Any, kind: str) -> Any:
        import faiss

        dim = array.shape[1]
        index: Any
        if kind == "sq8":
            index = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
            if len(array):
                index.train(array)
        else:
            index = faiss.IndexFlatIP(dim)
        if len(array):
            index.add(array)
        return index

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        """The vector dimension."""
        return int(self.vectors.shape[1])

    def search(self, queries: Any, k: int) -> tuple[Any, Any]:
        """The ``k`` highest inner products per query row: ``(scores, ids)``, both shaped ``(n_queries, k')``.

        ``k'`` is ``min(k, len(index))``; rows are sorted best first (ties by lower id on the NumPy path).
        """
        import numpy as np

        q = np.ascontiguousarray(np.asarray(queries, dtype=np.float32))
        if q.ndim == 1:
            q = q[None, :]
        if q.shape[1] != self.dim:
            raise RetrievalError(f"query vectors have dimension {q.shape[1]}, the index has {self.dim}")
        k = min(k, len(self))
        if k <= 0:
            return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
        if self._faiss_index is not None and self.kind == "sq8":
            return self._search_rescored(q, k)
        if self._faiss_index is not None:
            return self._search_faiss(q, k)
        scores = q @ self.vectors.T
        if k < scores.shape[1]:
            part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        else:
            part = np.tile(np.arange(scores.shape[1]), (len(q), 1))
        part_scores = np.take_along_axis(scores, part, axis=1)
        order = np.lexsort((part, -part_scores), axis=1)
        ids = np.take_along_axis(part, order, axis=1)
        return np.take_along_axis(scores, ids, axis=1), ids.astype(np.int64)

    def _search_rescored(self, q: Any, k: int) -> tuple[Any, Any]:
        """Shortlist with the quantised index, then exact scores for the shortlist, best first."""
        import numpy as np

        _, short = self._search_faiss(q, min(len(self), max(8 * k, 64)))
        short = np.where(short < 0, 0, short)
        exact = np.einsum("mkd,md->mk", self.vectors[short], q)
        order = np.lexsort((short, -exact), axis=1)[:, :k]
        ids = np.take_along_axis(short, order, axis=1)
        return np.take_along_axis(exact, order, axis=1), ids.astype(np.int64)

    def _search_faiss(self, q: Any, k: int) -> tuple[Any, Any]:
        import faiss

        threads = faiss.omp_get_max_threads()
        if len(q) == 1 and threads > 1:
            faiss.omp_set_num_threads(1)
            try:
                return self._faiss_index.search(q, k)  # type: ignore[no-any-return]
            finally:
                faiss.omp_set_num_threads(threads)
        return self._faiss_index.search(q, k)  # type: ignore[no-any-return]

    def save(self, directory: Path) -> None:
        """Write ``vectors.npy`` and ``index.json`` into ``directory``."""
        import numpy as np

        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / _VECTORS, self.vectors)
        (directory / _META).write_text(
            json.dumps({"kind": self.kind, "dim": self.dim, "size": len(self), "saved_backend": self.backend}) + "\n",
            encoding="utf-8",
        )

    @classmethod
    def load(cls, directory: Path, *, backend: IndexBackend = "auto") -> VectorIndex:
        """Read an index written by :meth:`save`, with FAISS if available (``backend="auto"``)."""
        import numpy as np

        meta_path = directory / _META
        if not meta_path.is_file() or not (directory / _VECTORS).is_file():
            raise RetrievalError(
                f"{directory} holds no saved vector index", hint="build one with 'malot retrieval index'"
            )
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        kind = meta.get("kind", "flat")
        if kind == "sq8" and backend != "numpy" and not faiss_available():
            kind = "flat"  # the quantised index needs FAISS; the exact one is a faithful stand-in
        resolved: IndexBackend = "numpy" if backend == "numpy" else backend
        if kind == "sq8" and resolved == "numpy":
            kind = "flat"
        return cls(np.load(directory / _VECTORS), backend=resolved, kind=kind)
