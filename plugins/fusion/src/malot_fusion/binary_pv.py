"""Binary Paragraph Vectors (Grzegorczyk and Kurdziel, "Binary Paragraph Vector Models").

A PV-DBOW model learns one vector per document by predicting the document's words from it. The binary variant puts
a sigmoid coding layer between the document vector and the word softmax and rounds its output to bits in the
forward pass, passing gradients straight through the rounding (a straight-through estimator), so the softmax learns
to predict words from *binary* codes. The codes are compact (``bits / 8`` bytes per document) and compared by Hamming
distance with XOR and a popcount, which makes them a cheap pre-filter: take the nearest codes, then rerank those few
candidates with an expensive scorer. Codes for unseen documents are inferred by fitting a new document vector with
the word softmax frozen.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = [
    "BinaryPV",
    "hamming_distances",
    "hamming_prefilter",
    "hamming_search",
    "pack_codes",
    "straight_through_bits",
]


def straight_through_bits(probs: torch.Tensor) -> torch.Tensor:
    """Round sigmoid outputs to {0, 1} in the forward pass; the backward pass sees the identity."""
    hard = (probs > 0.5).to(probs.dtype)
    return probs + (hard - probs).detach()


class BinaryPV(nn.Module):
    """PV-DBOW with a binary coding layer: ``word ~ softmax(W · round(sigmoid(doc_vector)) + b)``."""

    def __init__(self, n_docs: int, vocab_size: int, bits: int = 32, *, binary: bool = True) -> None:
        super().__init__()
        self.binary = binary  # False: the real-valued sigmoid codes (the paper's non-binary baseline)
        self.doc_vectors = nn.Embedding(n_docs, bits)
        nn.init.normal_(self.doc_vectors.weight, std=0.1)
        self.output = nn.Linear(bits, vocab_size)
        self.bits = bits

    def code_probs(self, doc_ids: torch.Tensor) -> torch.Tensor:
        """The sigmoid coding layer's output ``(batch, bits)``."""
        return torch.sigmoid(self.doc_vectors(doc_ids))

    def loss(self, doc_ids: torch.Tensor, word_ids: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of predicting ``word_ids`` from the binary codes of ``doc_ids`` (pairs, same length)."""
        probs = self.code_probs(doc_ids)
        codes = straight_through_bits(probs) if self.binary else probs
        return nn.functional.cross_entropy(self.output(codes), word_ids)

    @torch.no_grad()
    def codes(self) -> torch.Tensor:
        """Every training document's binary code ``(n_docs, bits)`` as a bool tensor."""
        return torch.sigmoid(self.doc_vectors.weight) > 0.5

    def fit(
        self, documents: Sequence[Sequence[int]], *, epochs: int = 30, lr: float = 0.05, batch: int = 512
    ) -> list[float]:
        """Train on ``documents`` (lists of word ids, one per document id); returns the loss per epoch."""
        doc_ids, word_ids = _pairs(documents)
        optimiser = torch.optim.Adam(self.parameters(), lr=lr)
        return _train(self, optimiser, doc_ids, word_ids, epochs=epochs, batch=batch)

    def infer(
        self, documents: Sequence[Sequence[int]], *, epochs: int = 30, lr: float = 0.05, batch: int = 512
    ) -> torch.Tensor:
        """Binary codes for unseen documents: fit fresh document vectors with the word softmax frozen."""
        return self.infer_probs(documents, epochs=epochs, lr=lr, batch=batch) > 0.5

    def infer_probs(
        self, documents: Sequence[Sequence[int]], *, epochs: int = 30, lr: float = 0.05, batch: int = 512
    ) -> torch.Tensor:
        """The coding layer's real-valued output for unseen documents (fitted with the word softmax frozen)."""
        fresh = BinaryPV(len(documents), self.output.out_features, self.bits, binary=self.binary)
        fresh.output.load_state_dict(self.output.state_dict())
        fresh.output.requires_grad_(False)
        doc_ids, word_ids = _pairs(documents)
        optimiser = torch.optim.Adam(fresh.doc_vectors.parameters(), lr=lr)
        _train(fresh, optimiser, doc_ids, word_ids, epochs=epochs, batch=batch)
        with torch.no_grad():
            return torch.sigmoid(fresh.doc_vectors.weight)


def _pairs(documents: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    doc_ids = [d for d, words in enumerate(documents) for _ in words]
    word_ids = [w for words in documents for w in words]
    return torch.tensor(doc_ids, dtype=torch.long), torch.tensor(word_ids, dtype=torch.long)


def _train(
    model: BinaryPV,
    optimiser: torch.optim.Optimizer,
    doc_ids: torch.Tensor,
    word_ids: torch.Tensor,
    *,
    epochs: int,
    batch: int,
) -> list[float]:
    losses: list[float] = []
    for _ in range(epochs):
        order = torch.randperm(doc_ids.numel())
        total = 0.0
        for start in range(0, order.numel(), batch):
            pick = order[start : start + batch]
            loss = model.loss(doc_ids[pick], word_ids[pick])
            optimiser.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimiser.step()
            total += float(loss.detach()) * pick.numel()
        losses.append(total / max(1, order.numel()))
    return losses


def pack_codes(codes: torch.Tensor) -> torch.Tensor:
    """Pack bool codes ``(n, bits)`` into bytes ``(n, ceil(bits / 8))`` (uint8), most significant bit first."""
    n, bits = codes.shape
    width = (bits + 7) // 8
    padded = torch.zeros(n, width * 8, dtype=torch.uint8)
    padded[:, :bits] = codes.to(torch.uint8)
    weights = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8)
    return (padded.view(n, width, 8) * weights).sum(dim=-1, dtype=torch.uint8)


_POPCOUNT = torch.tensor([bin(i).count("1") for i in range(256)], dtype=torch.int32)


def hamming_distances(query: torch.Tensor, database: torch.Tensor) -> torch.Tensor:
    """Hamming distances ``(q, n)`` between packed codes (uint8, from :func:`pack_codes`), by XOR and popcount."""
    xor = torch.bitwise_xor(query[:, None, :], database[None, :, :])
    return _POPCOUNT[xor.long()].sum(dim=-1)


def hamming_search(query: torch.Tensor, database: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(distances, indices)`` of the ``k`` nearest packed codes per query (ties broken by index)."""
    dist = hamming_distances(query, database)
    k = min(k, database.shape[0])
    # stable sort: equal distances keep database order, so results are deterministic
    sorted_dist, order = torch.sort(dist, dim=-1, stable=True)
    return sorted_dist[:, :k], order[:, :k]


def hamming_prefilter(
    query: torch.Tensor, database: torch.Tensor, candidates: int, rerank_scores: torch.Tensor, k: int
) -> torch.Tensor:
    """Cheap-then-exact retrieval: the ``candidates`` nearest codes, reranked by ``rerank_scores`` ``(q, n)``.

    Only the candidates' scores are read (higher is better); returns ``(q, k)`` database indices.
    """
    _, pool = hamming_search(query, database, candidates)
    scores = torch.gather(rerank_scores, 1, pool)
    top = scores.topk(min(k, pool.shape[1]), dim=-1).indices
    return torch.gather(pool, 1, top)
