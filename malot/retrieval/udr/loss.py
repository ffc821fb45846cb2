"""UDR's training objective: a LambdaRank-style list loss plus an in-batch cross-entropy term.

Each training example is a list of candidates kept in language-model order (position 0 is the LM's favourite).
The list loss sums, over every pair ``(i, j)`` that the LM ranks ``i`` above ``j``, the logistic pair loss
``log(1 + exp(s_j - s_i))`` weighted by the change in reciprocal rank ``1/r_i - 1/r_j``; the cross-entropy term asks
each query to pick its own best candidate out of every candidate in the batch. The two are combined 4:1 by default.
"""

from __future__ import annotations

from typing import Any

__all__ = ["in_batch_cross_entropy", "lambdarank_loss", "udr_loss"]


def lambdarank_loss(scores: Any, lm_ranks: Any | None = None, mask: Any | None = None) -> Any:
    """LambdaRank-style pairwise loss, averaged over lists.

    ``scores``: ``(B, L)`` model scores of lists kept in LM order; ``lm_ranks``: ``(B, L)`` 1-based LM ranks of those
    candidates (default: positions ``1..L``); ``mask``: ``(B, L)`` booleans, ``False`` for padding.
    """
    import torch

    batch, length = scores.shape
    if lm_ranks is None:
        lm_ranks = torch.arange(1, length + 1, dtype=scores.dtype, device=scores.device).expand(batch, length)
    ranks = lm_ranks.to(scores.dtype)
    recip = 1.0 / ranks
    # weight[b, i, j] = 1/r_i - 1/r_j, positive exactly when the LM prefers i to j
    weight = (recip[:, :, None] - recip[:, None, :]).clamp(min=0.0)
    if mask is not None:
        valid = mask[:, :, None] & mask[:, None, :]
        weight = weight * valid.to(scores.dtype)
    pair_loss = torch.nn.functional.softplus(scores[:, None, :] - scores[:, :, None])
    return (weight * pair_loss).sum(dim=(1, 2)).mean()


def in_batch_cross_entropy(query_emb: Any, cand_emb: Any, scale: float, mask: Any | None = None) -> Any:
    """Cross-entropy of each query over every candidate in the batch; the positive is its own list's first one.

    ``query_emb``: ``(B, D)``; ``cand_emb``: ``(B, L, D)``; padded candidates (``mask`` False) are never chosen.
    """
    import torch

    batch, length, dim = cand_emb.shape
    logits = scale * query_emb @ cand_emb.reshape(batch * length, dim).T
    if mask is not None:
        logits = logits.masked_fill(~mask.reshape(1, batch * length), float("-inf"))
    targets = torch.arange(batch, device=logits.device) * length
    return torch.nn.functional.cross_entropy(logits, targets)


def udr_loss(
    query_emb: Any,
    cand_emb: Any,
    lm_ranks: Any | None = None,
    mask: Any | None = None,
    *,
    scale: float = 20.0,
    rank_weight: float = 4.0,
    ce_weight: float = 1.0,
) -> tuple[Any, dict[str, float]]:
    """The combined objective ``rank_weight * list loss + ce_weight * in-batch CE``; also returns both parts."""
    scores = scale * (cand_emb @ query_emb[:, :, None]).squeeze(-1)
    rank = lambdarank_loss(scores, lm_ranks, mask)
    ce = in_batch_cross_entropy(query_emb, cand_emb, scale, mask)
    total = rank_weight * rank + ce_weight * ce
    return total, {"rank": float(rank.detach()), "ce": float(ce.detach()), "total": float(total.detach())}
