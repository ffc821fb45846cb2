"""Vector indexes: FAISS and NumPy agree; save and load round-trip across backends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from malot.errors import RetrievalError
from malot.retrieval.index import VectorIndex


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_faiss_and_numpy_agree() -> None:
    rng = np.random.default_rng(0)
    vectors, queries = _unit(rng, 500, 32), _unit(rng, 20, 32)
    f = VectorIndex(vectors, backend="faiss")
    n = VectorIndex(vectors, backend="numpy")
    fs, fi = f.search(queries, 10)
    ns, ni = n.search(queries, 10)
    assert f.backend == "faiss" and n.backend == "numpy"
    np.testing.assert_array_equal(fi, ni)
    np.testing.assert_allclose(fs, ns, rtol=1e-5, atol=1e-5)
    brute = queries @ vectors.T
    np.testing.assert_array_equal(ni[:, 0], brute.argmax(axis=1))
    assert np.all(np.diff(ns, axis=1) <= 1e-6)  # best first


def test_single_query_k_larger_than_index_and_sq8() -> None:
    rng = np.random.default_rng(1)
    vectors = _unit(rng, 7, 8)
    for backend in ("faiss", "numpy"):
        _, ids = VectorIndex(vectors, backend=backend).search(vectors[3], 50)
        assert ids.shape == (1, 7) and ids[0, 0] == 3 and sorted(ids[0].tolist()) == list(range(7))
    big = _unit(rng, 2000, 32)
    queries = _unit(rng, 50, 32)
    exact_scores, exact = VectorIndex(big, backend="faiss").search(queries, 5)
    sq8 = VectorIndex(big, backend="faiss", kind="sq8")
    approx_scores, approx = sq8.search(queries, 5)
    assert sq8.kind == "sq8" and (exact == approx).mean() >= 0.98  # the re-scored shortlist finds the true top 5
    same = exact == approx
    np.testing.assert_allclose(approx_scores[same], exact_scores[same], rtol=1e-5)  # and its scores are exact
    assert VectorIndex(big, kind="auto").kind == "flat"  # small corpora stay exact
    with pytest.raises(RetrievalError, match="2-D"):
        VectorIndex(np.zeros(3))


def test_save_and_load_across_backends(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    vectors, queries = _unit(rng, 300, 16), _unit(rng, 5, 16)
    VectorIndex(vectors, backend="faiss").save(tmp_path / "idx")
    expected = VectorIndex(vectors, backend="numpy").search(queries, 5)[1]
    for backend in ("faiss", "numpy"):
        loaded = VectorIndex.load(tmp_path / "idx", backend=backend)
        assert loaded.backend == backend and len(loaded) == 300
        np.testing.assert_array_equal(loaded.search(queries, 5)[1], expected)
    with pytest.raises(RetrievalError, match="no saved vector index"):
        VectorIndex.load(tmp_path / "empty")
