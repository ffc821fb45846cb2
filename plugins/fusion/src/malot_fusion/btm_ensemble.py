"""Branch-Train-Merge ensembling (Li et al., "Branch-Train-Merge: Embarrassingly Parallel Training of Expert LMs").

Each expert LM is trained on one domain. At inference the next-token distribution is a mixture of the experts,
weighted by the posterior over domains given the context so far::

    p(x_t | x_<t) = sum_j p_j(x_t | x_<t) * P(D = j | x_<t),   P(D = j | x_<t) ∝ P(D = j) * p_j(x_<t)

The prior ``P(D = j)`` is estimated from a few held-out sequences (the average of their posteriors) or left uniform;
the posterior is updated token by token with every expert's likelihood of the context. Optionally only the top-k
experts by posterior are kept (renormalised), as in the paper's sparse ensembling.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from malot_fusion.incremental import IncrementalLM

__all__ = [
    "BTMEnsemble",
    "domain_posterior",
    "ensemble_log_probs",
    "estimate_prior",
    "sequence_log_likelihoods",
]


def domain_posterior(context_log_likelihoods: torch.Tensor, log_prior: torch.Tensor | None = None) -> torch.Tensor:
    """``P(D = j | context)`` from each expert's log-likelihood of the context, ``(..., experts)``; Bayes rule."""
    scores = context_log_likelihoods.double()
    if log_prior is not None:
        scores = scores + log_prior.double()
    return torch.softmax(scores, dim=-1)


def ensemble_log_probs(
    expert_log_probs: torch.Tensor, posterior: torch.Tensor, *, top_k: int | None = None
) -> torch.Tensor:
    """``log sum_j P(j | ctx) p_j(x)``: the mixture of ``expert_log_probs`` ``(experts, batch, vocab)``.

    ``posterior`` is ``(batch, experts)``. With ``top_k`` only the k most probable domains are mixed (renormalised).
    """
    weights = posterior.double()
    if top_k is not None and top_k < weights.shape[-1]:
        keep = weights.topk(top_k, dim=-1).indices
        mask = torch.zeros_like(weights).scatter_(-1, keep, 1.0)
        weights = weights * mask
        weights = weights / weights.sum(-1, keepdim=True)
    log_w = torch.log(weights).T[:, :, None]  # (experts, batch, 1); log 0 = -inf drops an expert
    return torch.logsumexp(log_w + torch.log_softmax(expert_log_probs.double(), dim=-1), dim=0)


def estimate_prior(posteriors: torch.Tensor) -> torch.Tensor:
    """The domain prior as the average posterior over held-out sequences ``(n, experts)``; returns log-probs."""
    mean = posteriors.double().mean(dim=0)
    return torch.log(mean / mean.sum())


@torch.no_grad()
def sequence_log_likelihoods(model: Any, input_ids: torch.Tensor) -> torch.Tensor:
    """``log p(x_1..x_n | x_0)`` under a causal LM, per row of ``input_ids`` (the first token conditions)."""
    logits = model(input_ids=input_ids).logits[:, :-1, :].double()
    log_probs = torch.log_softmax(logits, dim=-1)
    picked = log_probs.gather(-1, input_ids[:, 1:, None]).squeeze(-1)
    return picked.sum(dim=-1)


class BTMEnsemble:
    """A posterior-weighted ensemble of causal LM experts that share a tokenizer, decoding with KV caches.

    :meth:`next_log_probs` takes the sequences so far, updates every expert's running log-likelihood with the tokens
    it has not scored yet, and returns the mixture log-probs and the posterior. It also works as a logits processor
    (``__call__(input_ids, scores)``): the driving model's scores are replaced by the ensemble's log-probs.
    """

    def __init__(
        self,
        experts: Sequence[Any],
        *,
        log_prior: torch.Tensor | None = None,
        top_k: int | None = None,
        pad_token_id: int | None = None,
    ) -> None:
        if not experts:
            raise ValueError("a BTM ensemble needs at least one expert")
        self.experts = [
            e if isinstance(e, IncrementalLM) else IncrementalLM(e, pad_token_id=pad_token_id) for e in experts
        ]
        n = len(self.experts)
        self.log_prior = (
            log_prior.double() if log_prior is not None else torch.full((n,), -math.log(n), dtype=torch.float64)
        )
        self.top_k = top_k
        self.pad_token_id = pad_token_id
        self._loglik: torch.Tensor | None = None
        self._last: list[torch.Tensor] = []
        self._scored_len = 0
        self.posteriors: list[list[list[float]]] = []

    def _reset(self, batch: int) -> None:
        self._loglik = torch.zeros(batch, len(self.experts), dtype=torch.float64)
        self._last = []
        self._scored_len = 0

    @torch.no_grad()
    def next_log_probs(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mixture log-probs (batch, vocab), posterior (batch, experts))`` for the next token of each row."""
        new_call = (
            self._loglik is None
            or self._loglik.shape[0] != input_ids.shape[0]
            or input_ids.shape[1] <= self._scored_len
        )
        if new_call:
            self._reset(input_ids.shape[0])
        start = self._scored_len
        assert self._loglik is not None
        real = self._real_mask(input_ids)
        last_logits: list[torch.Tensor] = []
        for j, expert in enumerate(self.experts):
            logits = expert.feed(input_ids)  # (batch, new, vocab) for positions start..end-1
            # position p is predicted by the logits at p - 1: prepend the last logits of the previous call
            preds = logits if not self._last else torch.cat([self._last[j][:, None, :], logits], dim=1)
            first = max(start, 1)
            targets = input_ids[:, first:]
            log_probs = torch.log_softmax(preds[:, : targets.shape[1], :].double(), dim=-1)
            picked = log_probs.gather(-1, targets[:, :, None]).squeeze(-1)
            picked = torch.where(real[:, first:] & real[:, first - 1 : -1], picked, torch.zeros_like(picked))
            self._loglik[:, j] += picked.sum(dim=-1)
            last_logits.append(logits[:, -1, :])
        self._last = last_logits
        self._scored_len = input_ids.shape[1]
        posterior = domain_posterior(self._loglik, self.log_prior)
        self.posteriors.append(posterior.tolist())
        mixture = ensemble_log_probs(torch.stack(last_logits), posterior, top_k=self.top_k)
        return mixture, posterior

    def _real_mask(self, input_ids: torch.Tensor) -> torch.Tensor:
        if self.pad_token_id is None:
            return torch.ones_like(input_ids, dtype=torch.bool)
        return (input_ids != self.pad_token_id).long().cumsum(dim=-1) > 0

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """Logits-processor form: return the ensemble's next-token log-probs in place of ``scores``."""
        mixture, _ = self.next_log_probs(input_ids)
        width = scores.shape[-1]
        if mixture.shape[-1] < width:
            mixture = torch.nn.functional.pad(mixture, (0, width - mixture.shape[-1]), value=float("-inf"))
        return mixture[:, :width].to(scores.dtype)
