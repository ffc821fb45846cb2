"""Exact properties of set2seq, Binary Paragraph Vectors, ReCo and GPICL."""

from __future__ import annotations

import itertools

import torch
from malot_fusion.binary_pv import (
    BinaryPV,
    hamming_distances,
    hamming_prefilter,
    hamming_search,
    pack_codes,
    straight_through_bits,
)
from malot_fusion.gpicl import GaussianTaskSource, ICLTransformer, in_context_accuracy, meta_train
from malot_fusion.retrieve_coseg import build_references, co_segment_reference, label_features, retrieve
from malot_fusion.set2seq import Set2Seq, min_over_orders_nll


def test_read_process_encoder_is_permutation_invariant() -> None:
    torch.manual_seed(0)
    model = Set2Seq(in_dim=3, d=16, process_steps=4).double()
    x = torch.randn(5, 7, 3, dtype=torch.float64)
    memories, q_star = model.encoder(x)
    for seed in range(3):
        perm = torch.randperm(7, generator=torch.Generator().manual_seed(seed))
        memories_p, q_star_p = model.encoder(x[:, perm])
        torch.testing.assert_close(q_star_p, q_star, rtol=0, atol=1e-12)
        torch.testing.assert_close(memories_p, memories[:, perm], rtol=0, atol=1e-12)  # read is element-wise


def test_min_over_orders_loss_is_the_best_ordering_and_order_free() -> None:
    torch.manual_seed(1)
    model = Set2Seq(in_dim=1, d=8, process_steps=2).double()
    x = torch.rand(2, 4, 1, dtype=torch.float64)
    sets = [[0, 2, 3], [1]]
    loss = min_over_orders_nll(model, x, sets)
    for row, elements in enumerate(sets):
        best = min(
            -float(model.log_likelihood(x[row : row + 1], torch.tensor([[*order, 4]])).detach())
            for order in itertools.permutations(elements)
        )
        assert abs(float(loss[row].detach()) - best) < 1e-10
    shuffled = min_over_orders_nll(model, x, [[3, 0, 2], [1]])
    assert torch.equal(shuffled, loss)
    loss.sum().backward()
    assert model.encoder.read[0].weight.grad is not None


def test_pointer_decoder_never_repeats_an_element() -> None:
    torch.manual_seed(2)
    model = Set2Seq(in_dim=2, d=8, process_steps=1)
    for sequence in model.predict(torch.randn(6, 5, 2)):
        assert len(sequence) == len(set(sequence)) and all(0 <= i < 5 for i in sequence)


def test_straight_through_codes_are_binary_and_pass_gradients() -> None:
    probs = torch.tensor([[0.2, 0.7, 0.5, 0.9]], requires_grad=True)
    bits = straight_through_bits(probs)
    assert bits.tolist() == [[0.0, 1.0, 0.0, 1.0]]
    bits.sum().backward()
    assert probs.grad is not None and probs.grad.tolist() == [[1.0, 1.0, 1.0, 1.0]]


def test_packed_hamming_distance_equals_bit_count_and_search_is_sorted() -> None:
    generator = torch.Generator().manual_seed(3)
    codes = torch.rand(30, 21, generator=generator) > 0.5
    packed = pack_codes(codes)
    assert packed.shape == (30, 3) and packed.dtype == torch.uint8
    naive = (codes[:5, None, :] != codes[None, :, :]).sum(-1)
    assert torch.equal(hamming_distances(packed[:5], packed).long(), naive.long())
    dist, idx = hamming_search(packed[:5], packed, 4)
    assert idx[:, 0].tolist() == [0, 1, 2, 3, 4] and bool((dist[:, :-1] <= dist[:, 1:]).all())
    rerank = torch.arange(30, dtype=torch.float64).expand(5, 30)
    picked = hamming_prefilter(packed[:5], packed, 10, rerank, 3)
    _, pool = hamming_search(packed[:5], packed, 10)
    for row in range(5):
        assert set(picked[row].tolist()) <= set(pool[row].tolist())
        assert picked[row].tolist() == sorted(pool[row].tolist(), reverse=True)[:3]


def test_binary_pv_codes_separate_topics() -> None:
    torch.manual_seed(4)
    generator = torch.Generator().manual_seed(4)
    docs = [(torch.randint(0, 10, (20,), generator=generator) + 10 * (d % 2)).tolist() for d in range(16)]
    model = BinaryPV(len(docs), 20, bits=16)
    losses = model.fit(docs, epochs=40, lr=0.05)
    assert losses[-1] < losses[0]
    packed = pack_codes(model.codes())
    dist = hamming_distances(packed, packed).double()
    same = torch.tensor([[a % 2 == b % 2 and a != b for b in range(16)] for a in range(16)])
    other = torch.tensor([[a % 2 != b % 2 for b in range(16)] for a in range(16)])
    assert float(dist[same].mean()) < float(dist[other].mean())
    inferred = model.infer([docs[0], docs[1]], epochs=40)
    assert inferred.shape == (2, 16) and inferred.dtype == torch.bool


def test_co_segmentation_recovers_the_shared_feature_exactly() -> None:
    generator = torch.Generator().manual_seed(5)
    shared = torch.randn(16, generator=generator, dtype=torch.float64)
    items = []
    for _ in range(4):
        clutter = torch.randn(6, 16, generator=generator, dtype=torch.float64)
        items.append(torch.cat([clutter[:3], 2.0 * shared[None], clutter[3:]]))
    reference = co_segment_reference(items)
    torch.testing.assert_close(reference, shared / shared.norm(), rtol=0, atol=1e-12)
    labels, _ = label_features(torch.stack([shared, -shared]), torch.stack([reference, -reference]))
    assert labels.tolist() == [0, 1]


def test_retrieve_then_reference_per_concept() -> None:
    generator = torch.Generator().manual_seed(6)
    concepts = torch.eye(3, 12, dtype=torch.float64)
    features, embeddings = [], []
    for i in range(12):
        concept = concepts[i % 3]
        patches = torch.cat(
            [
                concept[None] + 0.05 * torch.randn(2, 12, generator=generator, dtype=torch.float64),
                torch.randn(5, 12, generator=generator, dtype=torch.float64),
            ]
        )
        features.append(patches)
        embeddings.append(concept + 0.1 * torch.randn(12, generator=generator, dtype=torch.float64))
    assert sorted(retrieve(concepts[1], torch.stack(embeddings), 4).tolist()) == [1, 4, 7, 10]
    references = build_references(concepts, torch.stack(embeddings), features, k=4)
    labels, _ = label_features(concepts, references)
    assert labels.tolist() == [0, 1, 2]


def test_gpicl_tasks_are_label_permutations_and_the_model_is_causal() -> None:
    source = GaussianTaskSource(dim=4, classes=3, seed=0)
    batch = source.sample(8, 10, torch.Generator().manual_seed(0))
    assert batch.inputs.shape == (8, 10, 7)
    assert torch.equal(batch.inputs[:, 1:, 4:].argmax(-1), batch.labels[:, :-1])  # previous label is fed back
    assert bool((batch.inputs[:, 0, 4:] == 0).all())
    model = ICLTransformer(7, 3, d=16, layers=1, heads=2)
    model.eval()
    with torch.no_grad():
        out = model(batch.inputs)
        changed = batch.inputs.clone()
        changed[:, 6:] = torch.randn_like(changed[:, 6:])
        out_changed = model(changed)
    torch.testing.assert_close(out[:, :6], out_changed[:, :6], rtol=0, atol=1e-6)
    assert not torch.allclose(out[:, 6:], out_changed[:, 6:])
    losses = meta_train(model, source, steps=3, batch=4, length=10)
    assert len(losses) == 3
    assert in_context_accuracy(model, source, sequences=8, length=10).shape == (10,)
