"""Exact properties of Dynamic Logits Fusion on tiny offline Llama models."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from fusion_fixtures import tiny_llama
from malot_fusion.dynamic_logits_fusion import (
    FusionRecorder,
    fuse_logits,
    kl_from_logits,
    logit_shift,
    solve_fusion_weights,
    solve_single_weight,
)
from malot_fusion.fusion_processor import FusionLogitsProcessor
from malot_fusion.incremental import IncrementalLM


def _last_logits(model: Any, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out: torch.Tensor = model(ids).logits[:, -1, :].float()
    return out


@pytest.fixture
def ids() -> torch.Tensor:
    return torch.tensor([[5, 9, 17, 3, 22, 40], [7, 7, 30, 12, 4, 19]])


def test_expert_equal_to_base_leaves_large_logits_unchanged(tiny_trio: Any, ids: torch.Tensor) -> None:
    large, _, base = tiny_trio
    processor = FusionLogitsProcessor([base], base)
    scores = _last_logits(large, ids)
    fused = processor(ids, scores.clone())
    assert torch.equal(fused, scores)
    assert processor.recorder.steps[0].weights == [[0.0], [0.0]]


def test_single_expert_kl_matches_target_and_weight_in_bounds(tiny_trio: Any, ids: torch.Tensor) -> None:
    large, expert, base = tiny_trio
    z_l, z_e, z_b = (_last_logits(m, ids) for m in (large, expert, base))
    delta = logit_shift(z_e, z_b, z_l.shape[-1])
    target = kl_from_logits(z_e, z_b)
    alpha = solve_single_weight(z_l, delta, target, lower=0.0, upper=5.0)
    assert bool(((alpha > 0) & (alpha < 5.0)).all())
    achieved = kl_from_logits(z_l + alpha[:, None] * delta, z_l)
    torch.testing.assert_close(achieved, target, rtol=1e-3, atol=1e-8)
    # a target the bound cannot reach gives exactly the bound
    clipped = solve_single_weight(z_l, delta, target * 1e6, lower=0.0, upper=0.25)
    assert torch.equal(clipped, torch.full_like(clipped, 0.25))


def test_joint_solve_matches_each_expert_shift_within_bounds(tiny_trio: Any, ids: torch.Tensor) -> None:
    large, expert, base = tiny_trio
    second = tiny_llama(14)
    z_l, z_b = _last_logits(large, ids), _last_logits(base, ids)
    experts = [_last_logits(expert, ids), _last_logits(second, ids)]
    deltas = torch.stack([logit_shift(z, z_b, z_l.shape[-1]) for z in experts])
    targets = torch.stack([kl_from_logits(z, z_b) for z in experts])
    weights = solve_fusion_weights(z_l, deltas, targets, lower=0.0, upper=3.0, objective="marginal")
    assert weights.shape == (2, 2)
    assert bool(((weights >= 0.0) & (weights <= 3.0)).all())
    fused = fuse_logits(z_l.double(), deltas, weights)
    interior = ((weights > 0.0) & (weights < 3.0)).all(dim=1)
    assert bool(interior.any())  # row 1 is solvable inside the box; row 0 needs more than 3.0 and is clipped
    for t in range(2):
        without = fused - weights[:, t : t + 1] * deltas[t]
        achieved = kl_from_logits(fused, without)
        torch.testing.assert_close(achieved[interior], targets[t][interior], rtol=1e-4, atol=1e-8)
    assert bool(((weights == 3.0) | interior[:, None]).any(dim=1).all())
    # the paper's literal objective: the total shift sits between the experts' targets (least squares)
    total = solve_fusion_weights(z_l, deltas, targets, lower=0.0, upper=3.0, objective="total")
    fused_total = fuse_logits(z_l.double(), deltas, total)
    shift = kl_from_logits(fused_total, z_l)
    inside = ((total > 0.0) & (total < 3.0)).any(dim=1)
    assert bool(inside.any())
    torch.testing.assert_close(shift[inside], targets.mean(0)[inside], rtol=1e-4, atol=1e-8)


def test_incremental_cache_matches_full_recompute_with_left_padding() -> None:
    model = tiny_llama(21)
    inc = IncrementalLM(model, pad_token_id=0)
    seq = torch.tensor([[0, 0, 5, 6, 7], [3, 4, 5, 6, 7]])
    first = inc.next_logits(seq)
    grown = torch.cat([seq, torch.tensor([[9], [10]])], dim=1)
    second = inc.next_logits(grown)
    assert inc.forward_passes == 2 and inc.tokens_fed == seq.numel() + 2
    torch.testing.assert_close(first[0], _last_logits(model, seq[:1, 2:])[0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(second[0], _last_logits(model, grown[:1, 2:])[0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(second[1], _last_logits(model, grown[1:])[0], rtol=1e-4, atol=1e-4)


def test_processor_in_generate_records_weights_and_uses_one_pass_per_step(tiny_trio: Any, ids: torch.Tensor) -> None:
    large, expert, base = tiny_trio
    seen: list[int] = []
    recorder = FusionRecorder(callback=lambda step: seen.append(step.step))
    processor = FusionLogitsProcessor([expert], base, recorder=recorder, upper=2.0)
    out = large.generate(ids, max_new_tokens=5, do_sample=False, logits_processor=[processor], pad_token_id=0)
    assert out.shape == (2, ids.shape[1] + 5)
    assert seen == [0, 1, 2, 3, 4]
    assert processor.side_forward_passes == 2 * 5
    note = recorder.as_note()
    assert note["fusion_steps"] == 5
    for step in recorder.steps:
        for row, weights in enumerate(step.weights):
            assert 0.0 <= weights[0] <= 2.0
            if 0.0 < weights[0] < 2.0:
                assert step.fused_kl[row] == pytest.approx(step.target_kl[row][0], rel=1e-3)
    # the fused continuation differs from the large model alone (the expert steers it)
    plain = large.generate(ids, max_new_tokens=5, do_sample=False, pad_token_id=0)
    assert not torch.equal(plain, out)


def test_two_experts_decode_with_jointly_solved_weights(tiny_trio: Any, ids: torch.Tensor) -> None:
    large, expert, base = tiny_trio
    processor = FusionLogitsProcessor([expert, tiny_llama(14)], base, upper=3.0)
    large.generate(ids, max_new_tokens=3, do_sample=False, logits_processor=[processor], pad_token_id=0)
    assert len(processor.recorder.steps) == 3
    for step in processor.recorder.steps:
        assert all(len(row) == 2 and all(0.0 <= w <= 3.0 for w in row) for row in step.weights)
    assert processor.side_forward_passes == 3 * 3  # two experts and the base, one cached pass each per step


def test_left_padding_with_a_pad_token_that_is_also_bos() -> None:
    model = tiny_llama(22)
    bos = 1
    inc = IncrementalLM(model, pad_token_id=bos, pad_is_bos=True)
    padded = torch.tensor([[bos, bos, bos, 5, 6], [bos, 7, 8, 9, 10]])  # row 0: two pads, then BOS 5 6
    logits = inc.next_logits(padded)
    torch.testing.assert_close(logits[0], _last_logits(model, torch.tensor([[bos, 5, 6]]))[0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(logits[1], _last_logits(model, padded[1:])[0], rtol=1e-4, atol=1e-4)
