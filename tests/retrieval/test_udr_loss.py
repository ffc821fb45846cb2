"""Properties of UDR's objective and of its candidate-list sampling."""

from __future__ import annotations

import random

import pytest
import torch

from malot.retrieval.udr.loss import in_batch_cross_entropy, lambdarank_loss, udr_loss
from malot.retrieval.udr.sampling import sample_candidate_list


def test_lambdarank_is_lower_when_scores_follow_the_lm_order() -> None:
    ordered = torch.tensor([[4.0, 3.0, 2.0, 1.0]])  # lists are kept in LM order: position 0 is the best
    reversed_ = ordered.flip(1)
    shuffled = torch.tensor([[3.0, 4.0, 1.0, 2.0]])
    assert lambdarank_loss(ordered) < lambdarank_loss(shuffled) < lambdarank_loss(reversed_)
    # a wide correct margin drives the loss towards zero
    assert lambdarank_loss(ordered * 20) < 1e-6


def test_lambdarank_gradient_raises_better_and_lowers_worse_candidates() -> None:
    scores = torch.zeros(1, 4, requires_grad=True)
    lambdarank_loss(scores).backward()
    grad = scores.grad
    assert grad is not None
    assert grad[0, 0] < 0 < grad[0, 3]  # gradient descent raises the LM's best and lowers its worst
    assert grad.sum().abs() < 1e-6  # pairwise: what one candidate gains another loses


def test_lambdarank_weights_are_reciprocal_rank_changes() -> None:
    scores = torch.tensor([[0.0, 0.0]])
    # one pair, logistic loss log 2, weight 1/1 - 1/2 when the ranks are 1 and 2
    assert lambdarank_loss(scores) == pytest.approx(0.5 * torch.log(torch.tensor(2.0)).item())
    far = lambdarank_loss(scores, torch.tensor([[10.0, 20.0]]))
    assert far == pytest.approx((1 / 10 - 1 / 20) * torch.log(torch.tensor(2.0)).item())
    tied = lambdarank_loss(torch.tensor([[1.0, -1.0]]), torch.tensor([[3.0, 3.0]]))
    assert tied == 0  # equal LM ranks: no preference, no loss
    masked = lambdarank_loss(torch.tensor([[0.0, 5.0]]), mask=torch.tensor([[True, False]]))
    assert masked == 0  # padding never counts


def test_in_batch_cross_entropy_prefers_each_querys_own_best_candidate() -> None:
    q = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=1)
    good = torch.stack([torch.stack([q[0], -q[0]]), torch.stack([q[1], -q[1]])])  # (B=2, L=2, D=2)
    swapped = good.flip(0)
    assert in_batch_cross_entropy(q, good, scale=20.0) < 1e-3
    assert in_batch_cross_entropy(q, swapped, scale=20.0) > 10


def test_udr_loss_combines_the_parts_four_to_one() -> None:
    torch.manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(3, 8), dim=1)
    c = torch.nn.functional.normalize(torch.randn(3, 5, 8), dim=2)
    total, parts = udr_loss(q, c, scale=10.0)
    assert parts["total"] == pytest.approx(4 * parts["rank"] + parts["ce"], rel=1e-5)
    assert float(total) == pytest.approx(parts["total"])


def test_sampled_lists_hold_top_middle_and_bottom_in_lm_order() -> None:
    rng = random.Random(0)
    ranking = list(range(50))
    seen_middle = set()
    for _ in range(50):
        positions = sample_candidate_list(ranking, size=8, n_top=3, n_bottom=1, rng=rng)
        assert len(positions) == 8 and positions == sorted(positions) and len(set(positions)) == 8
        assert positions[0] == 0 and positions[-1] == 49  # the best (CE positive) and the bottom one
        assert sum(p <= 6 for p in positions) >= 3  # some from the top
        seen_middle.update(p for p in positions if 6 < p < 49)
    assert len(seen_middle) > 20  # the middle is sampled, not fixed
    assert sample_candidate_list([5, 6, 7], size=8, rng=rng) == [0, 1, 2]  # short rankings: all of them


def test_tied_feedback_scores_share_a_rank() -> None:
    from malot.retrieval.udr.train import FeedbackTable

    table = FeedbackTable()
    table.scores[0] = {5: 0.5, 6: 1.0, 7: 0.5, 8: 0.1}
    assert table.ranking(0) == [6, 5, 7, 8]
    assert table.tied_ranks(0) == {6: 1, 5: 2, 7: 2, 8: 4}  # equal proxy scores: no preference between 5 and 7
    assert table.missing(0, [5, 9]) == [9]
