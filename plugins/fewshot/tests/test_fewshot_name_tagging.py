"""name_tagging_transfer: BIO vocabulary checks, contrastive training moves type prototypes apart, span F1 by
seqeval, a run through the registry, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from malot_fewshot.name_tagging import (
    NameTaggingInput,
    Tagger,
    entity_f1,
    name_tagging_transfer,
    tag_vocabulary,
    train_tagger,
    type_prototype_separation,
)

from malot.errors import ToolError
from malot.tools import ToolRegistry


def _corpus(seed: int, n: int, rot: np.ndarray | None = None) -> tuple[list[np.ndarray], list[list[str]]]:
    rng = np.random.default_rng(seed)
    dirs = np.random.default_rng(100).normal(size=(2, 6)) * 1.5
    xs, ys = [], []
    for _ in range(n):
        toks, tags = [], []
        for _ in range(5):
            r = rng.uniform()
            if r < 0.2:
                toks.append(dirs[0] + 0.8 * rng.normal(size=6))
                tags.append("B-PER")
            elif r < 0.4:
                toks.append(dirs[1] + 0.8 * rng.normal(size=6))
                tags.append("B-LOC")
            else:
                toks.append(rng.normal(size=6))
                tags.append("O")
        sentence = np.array(toks)
        xs.append(sentence @ rot.T if rot is not None else sentence)
        ys.append(tags)
    return xs, ys


def test_vocabulary_is_bio_and_refuses_other_tags() -> None:
    assert tag_vocabulary([["O", "B-PER", "I-PER"], ["B-LOC"]]) == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    with pytest.raises(ToolError, match="not BIO"):
        tag_vocabulary([["PER"]])


def test_entity_f1_scores_spans() -> None:
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    assert entity_f1(gold, gold) == 1.0
    assert entity_f1(gold, [["B-PER", "O", "O", "B-LOC"]]) == pytest.approx(0.5)  # the PER span is cut short


def test_supervised_contrastive_loss_matches_its_definition() -> None:
    import torch
    from malot_fewshot.core.training import supervised_contrastive_loss

    z = torch.nn.functional.normalize(torch.randn(12, 4, generator=torch.Generator().manual_seed(0)), dim=1)
    y = torch.tensor([0, 0, 1, 1, 1, 2, 0, 1, 3, 2, 0, 1])
    terms = []
    for i in range(12):
        others = [j for j in range(12) if j != i]
        denominator = torch.logsumexp(torch.stack([z[i] @ z[j] / 0.1 for j in others]), 0)
        positives = [j for j in others if y[j] == y[i]]
        if positives:
            terms.append(torch.stack([denominator - z[i] @ z[p] / 0.1 for p in positives]).mean())
    expected = torch.stack(terms).mean()
    assert float(supervised_contrastive_loss(z, y, 0.1)) == pytest.approx(float(expected), rel=1e-5)


def test_contrastive_training_moves_type_prototypes_apart() -> None:
    import torch
    from malot_fewshot.core.training import mlp, seeded

    xs, ys = _corpus(0, 60)
    seeded(0)
    untrained = Tagger(encoder=mlp(18, 32, 32), tag_table=torch.nn.Parameter(torch.zeros(5, 32)), vocabulary=[])
    before = type_prototype_separation(untrained, xs, ys)
    trained = train_tagger((xs, ys), (xs[:2], ys[:2]), [], method="metric", hidden=32, steps=80)
    after = type_prototype_separation(trained, xs, ys)
    assert after > before + 0.3
    # and further apart than cross-entropy alone puts them (same seed, data and steps)
    plain = train_tagger((xs, ys), (xs[:2], ys[:2]), [], method="metric", hidden=32, steps=80, contrastive_weight=0.0)
    assert after > type_prototype_separation(plain, xs, ys) + 0.1


def test_tool_through_the_registry() -> None:
    xs, ys = _corpus(1, 30)
    tx, ty = _corpus(2, 4)
    registry = ToolRegistry()
    registry.register(name_tagging_transfer)
    out = registry.run_sync(
        "name_tagging_transfer",
        {
            "source_tokens": [x.tolist() for x in xs],
            "source_tags": ys,
            "target_tokens": [x.tolist() for x in tx],
            "target_tags": ty,
            "unlabelled_tokens": [x.tolist() for x in xs[:5]],
            "predict_tokens": [x.tolist() for x in tx],
            "steps": 40,
        },
        isolation="inline",
    ).model_dump()
    assert [len(t) for t in out["tags"]] == [5, 5, 5, 5]
    assert entity_f1(ty, out["tags"]) > 0.5


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"source_tags": [["O"]]}, "one tag per token"),
        ({"target_tokens": [[[0.0, 1.0, 2.0]]]}, "expected 2"),
        ({"source_tags": [["X", "O"]]}, "not BIO"),
        ({"source_tokens": []}, "at least one source"),
        ({"predict_tokens": [[[float("nan"), 0.0]]]}, "NaN"),
    ],
)
def test_bad_input_is_one_clear_error(change: dict[str, object], message: str) -> None:
    base: dict[str, object] = {
        "source_tokens": [[[0.0, 1.0], [1.0, 0.0]]],
        "source_tags": [["O", "B-PER"]],
        "target_tokens": [[[0.0, 1.0]]],
        "target_tags": [["B-PER"]],
        "predict_tokens": [[[0.0, 1.0]]],
        "steps": 1,
    }
    base.update(change)
    with pytest.raises(ToolError, match=message):
        name_tagging_transfer(NameTaggingInput.model_validate(base))
