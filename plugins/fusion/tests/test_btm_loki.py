"""Exact properties of BTM ensembling and Loki."""

from __future__ import annotations

from typing import Any

import torch
from fusion_fixtures import tiny_llama
from malot_fusion.btm_ensemble import BTMEnsemble, domain_posterior, ensemble_log_probs, sequence_log_likelihoods
from malot_fusion.loki import LokiPredictor, graph_distances


def test_btm_posterior_is_bayes_rule_over_context_likelihoods(tiny_trio: Any) -> None:
    experts = [tiny_llama(12), tiny_llama(13), tiny_llama(14)]
    ids = torch.tensor([[4, 8, 15, 16, 23, 42], [1, 2, 3, 5, 8, 13]])
    log_prior = torch.log(torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64))
    ensemble = BTMEnsemble(experts, log_prior=log_prior)
    mixture, posterior = ensemble.next_log_probs(ids[:, :4])
    mixture, posterior = ensemble.next_log_probs(ids)  # incremental update with two new tokens
    logliks = torch.stack([sequence_log_likelihoods(e, ids) for e in experts], dim=-1)
    expected = torch.exp(logliks + log_prior)
    expected = expected / expected.sum(-1, keepdim=True)
    torch.testing.assert_close(posterior, expected, rtol=1e-5, atol=1e-9)
    with torch.no_grad():
        probs = torch.stack([torch.softmax(e(ids).logits[:, -1].double(), -1) for e in experts])
    by_hand = torch.log((probs * expected.T[:, :, None]).sum(0))
    torch.testing.assert_close(mixture, by_hand, rtol=1e-5, atol=1e-6)
    # top-1 keeps only the MAP domain's expert
    top1 = ensemble_log_probs(torch.log(probs), expected, top_k=1)
    best = expected.argmax(-1)
    for row in range(2):
        torch.testing.assert_close(top1[row], torch.log(probs[best[row], row]), rtol=1e-6, atol=1e-9)


def test_btm_equal_experts_reduce_to_the_expert() -> None:
    expert = tiny_llama(12)
    ids = torch.tensor([[4, 8, 15, 16]])
    mixture, posterior = BTMEnsemble([expert, expert]).next_log_probs(ids)
    torch.testing.assert_close(posterior, torch.tensor([[0.5, 0.5]], dtype=torch.float64))
    with torch.no_grad():
        direct = torch.log_softmax(expert(ids).logits[:, -1].double(), -1)
    torch.testing.assert_close(mixture, direct, rtol=1e-5, atol=1e-6)
    assert torch.equal(domain_posterior(torch.tensor([0.0, 0.0])), torch.tensor([0.5, 0.5], dtype=torch.float64))


def test_loki_predicts_the_unseen_midpoint_of_a_path() -> None:
    dist = graph_distances(5, [(0, 1), (1, 2), (2, 3), (3, 4)])
    loki = LokiPredictor(dist, observed=[0, 4])
    pred = loki.predict(torch.tensor([[0.5, 0.5], [0.9, 0.1], [0.0, 1.0]]))
    assert pred.tolist() == [2, 0, 4]
    # the Fréchet variance at the midpoint is the minimum over the path
    risks = [float(loki.expected_squared_distance(torch.tensor([[0.5, 0.5]]), torch.tensor([y]))) for y in range(5)]
    assert risks == [8.0, 5.0, 4.0, 5.0, 8.0]


def test_loki_with_all_labels_observed_and_peaked_probs_is_the_argmax() -> None:
    dist = graph_distances(4, [(0, 1), (1, 2), (2, 3), (3, 0)])
    loki = LokiPredictor(dist, observed=[0, 1, 2, 3])
    probs = torch.softmax(torch.randn(50, 4, generator=torch.Generator().manual_seed(0)) * 6, dim=-1)
    # risk(argmax) <= diameter^2 * (1 - p_max) = 4 (1 - p_max) < p_max <= risk(any other label) when p_max > 0.8
    peaked = probs.max(-1).values > 0.8
    assert int(peaked.sum()) > 10
    assert torch.equal(loki.predict(probs)[peaked], probs.argmax(-1)[peaked])
