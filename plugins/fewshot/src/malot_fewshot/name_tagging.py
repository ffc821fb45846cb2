"""Cross-lingual / cross-domain name tagging with metric learning (low-resource NER transfer).

A source language or domain has many tagged sentences; the target has a few tagged sentences and unlabelled text,
with its tokens embedded in a space only roughly aligned with the source's. The method transfers in three steps:

1. **Contrastive grouping of entity types**: the token encoder (a window of previous/current/next token embeddings
   through an MLP) is trained on the source with cross-entropy *plus* a supervised contrastive loss that pulls
   tokens of the same entity type together and pushes types apart (Khosla et al.'s SupCon loss, in ``core``:
   pytorch-metric-learning's version was far too slow here);
2. **Pseudo-labelling the target**: unlabelled target tokens get the tag of the nearest type prototype (prototypes
   from the few labelled target tokens), kept only when the softmax over prototype similarities (temperature τ)
   exceeds ``pseudo_margin``;
3. **Separate source and target type embeddings**: the tagger scores ``z·t_tag`` with one table of tag embeddings
   per side (the target's initialised from the source's), trained jointly on source, few-shot target and
   pseudo-labelled target tokens so the target is not forced into the source's decision boundaries.

Entities are BIO spans; spans are scored with seqeval's entity-level F1. The method's part: the three steps and the
losses; the libraries': seqeval's span F1 and torch for the networks. (The
seed document gives only the abstract; the steps above follow the study table in ``plugin-methods.md``.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool

if TYPE_CHECKING:
    import numpy as np
    import torch
    from numpy.typing import NDArray

__all__ = [
    "NameTaggingInput",
    "NameTaggingOutput",
    "Tagger",
    "entity_f1",
    "name_tagging_transfer",
    "tag_vocabulary",
    "train_tagger",
    "type_prototype_separation",
]

_PAPER = "Cross-lingual/cross-domain name tagging with metric learning (study-table row 30; seed-document abstract)"

Method = Literal["metric", "finetune", "target_only"]


def tag_vocabulary(tags: list[list[str]]) -> list[str]:
    """``O`` plus the sorted B-/I- tags seen; refuses tags outside the BIO scheme."""
    found: set[str] = set()
    for sentence in tags:
        for tag in sentence:
            if tag != "O" and not (tag[:2] in ("B-", "I-") and len(tag) > 2):
                raise ToolError(f"tag {tag!r} is not BIO", hint="use O, B-TYPE and I-TYPE tags")
            found.add(tag)
    types = sorted({t[2:] for t in found if t != "O"})
    return ["O", *[f"{p}-{t}" for t in types for p in ("B", "I")]]


def _windows(sentences: list[NDArray[np.float64]]) -> NDArray[np.float64]:
    import numpy as np

    rows = []
    for s in sentences:
        pad = np.zeros((1, s.shape[1]))
        padded = np.vstack([pad, s, pad])
        rows.append(np.hstack([padded[:-2], padded[1:-1], padded[2:]]))
    return np.vstack(rows) if rows else np.zeros((0, 0))


@dataclass
class Tagger:
    """Token encoder, tag embeddings per side, and the tag vocabulary."""

    encoder: torch.nn.Module
    tag_table: torch.nn.Parameter
    vocabulary: list[str]

    def encode(self, sentences: list[NDArray[np.float64]]) -> torch.Tensor:
        """Normalised token representations (all sentences' tokens stacked)."""
        import torch

        x = torch.as_tensor(_windows(sentences), dtype=torch.float32)
        return torch.nn.functional.normalize(self.encoder(x), dim=1)

    def predict(self, sentences: list[NDArray[np.float64]]) -> list[list[str]]:
        """BIO tags for every token of every sentence."""
        import torch

        with torch.no_grad():
            ids = (self.encode(sentences) @ self.tag_table.T).argmax(1).tolist()
        out, start = [], 0
        for s in sentences:
            out.append([self.vocabulary[i] for i in ids[start : start + len(s)]])
            start += len(s)
        return out


def entity_f1(gold: list[list[str]], predicted: list[list[str]]) -> float:
    """Entity-level (span) F1 by seqeval."""
    from seqeval.metrics import f1_score  # type: ignore[import-untyped]

    return float(f1_score(gold, predicted))


def type_prototype_separation(tagger: Tagger, sentences: list[NDArray[np.float64]], tags: list[list[str]]) -> float:
    """Smallest cosine distance between the mean representations of two different entity types (larger = apart)."""
    import numpy as np
    import torch

    with torch.no_grad():
        z = tagger.encode(sentences).numpy()
    flat = [t for s in tags for t in s]
    types = sorted({t[2:] for t in flat if t != "O"})
    protos = []
    for kind in types:
        rows = z[[i for i, t in enumerate(flat) if t != "O" and t[2:] == kind]]
        mean = rows.mean(0)
        protos.append(mean / np.linalg.norm(mean))
    sims = np.array(protos) @ np.array(protos).T
    return float(1.0 - sims[~np.eye(len(types), dtype=bool)].max())


def train_tagger(
    source: tuple[list[NDArray[np.float64]], list[list[str]]],
    target_few: tuple[list[NDArray[np.float64]], list[list[str]]],
    target_unlabelled: list[NDArray[np.float64]],
    *,
    method: Method = "metric",
    hidden: int = 64,
    steps: int = 300,
    contrastive_weight: float = 1.0,
    temperature: float = 0.1,
    pseudo_margin: float = 0.9,
    seed: int = 0,
) -> Tagger:
    """Train a tagger by ``metric`` (the method), ``finetune`` (source then few target) or ``target_only``."""
    import torch

    from malot_fewshot.core.training import fit_full_batch, mlp, seeded, supervised_contrastive_loss

    seeded(seed)
    vocabulary = tag_vocabulary(source[1] + target_few[1])
    index = {t: i for i, t in enumerate(vocabulary)}
    dim = source[0][0].shape[1] if source[0] else target_few[0][0].shape[1]
    encoder = mlp(3 * dim, hidden, hidden)
    src_table = torch.nn.Parameter(torch.randn(len(vocabulary), hidden) * 0.1)
    tagger = Tagger(encoder=encoder, tag_table=src_table, vocabulary=vocabulary)
    scale = 1.0 / temperature

    def labels(tags: list[list[str]]) -> torch.Tensor:
        return torch.as_tensor([index[t] for s in tags for t in s])

    ys, yt = labels(source[1]), labels(target_few[1])
    xs = torch.as_tensor(_windows(source[0]), dtype=torch.float32)
    xt = torch.as_tensor(_windows(target_few[0]), dtype=torch.float32)

    def enc(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(encoder(x), dim=1)

    def ce(z: torch.Tensor, table: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(scale * z @ torch.nn.functional.normalize(table, dim=1).T, y)

    if method == "target_only":
        fit_full_batch([*encoder.parameters(), src_table], lambda: ce(enc(xt), src_table, yt), steps=steps, lr=1e-2)
        tagger.tag_table = torch.nn.Parameter(torch.nn.functional.normalize(src_table.detach(), dim=1) * scale)
        return tagger

    entity = ys != index["O"]
    kinds = {kind: k for k, kind in enumerate(sorted({t[2:] for t in vocabulary if t != "O"}))}
    type_ids = torch.as_tensor([kinds.get(vocabulary[int(i)][2:], -1) for i in ys])  # B-X and I-X share type X

    def source_loss() -> torch.Tensor:
        z = enc(xs)
        loss = ce(z, src_table, ys)
        if method == "metric" and int(entity.sum()) > 1:
            loss = loss + contrastive_weight * supervised_contrastive_loss(z[entity], type_ids[entity], temperature)
        return loss

    fit_full_batch([*encoder.parameters(), src_table], source_loss, steps=steps, lr=1e-2)
    if method == "finetune":
        fit_full_batch(
            [*encoder.parameters(), src_table], lambda: ce(enc(xt), src_table, yt), steps=steps // 2, lr=3e-3
        )
        tagger.tag_table = torch.nn.Parameter(torch.nn.functional.normalize(src_table.detach(), dim=1) * scale)
        return tagger

    # metric: pseudo-label the unlabelled target by the nearest few-shot prototype, then separate tag tables
    tgt_table = torch.nn.Parameter(src_table.detach().clone())
    with torch.no_grad():
        zt = enc(xt)
        protos = torch.stack(
            [zt[yt == i].mean(0) if bool((yt == i).any()) else src_table[i] for i in range(len(vocabulary))]
        )
        protos = torch.nn.functional.normalize(protos, dim=1)
        xu = torch.as_tensor(_windows(target_unlabelled), dtype=torch.float32) if target_unlabelled else xt[:0]
        probs = torch.softmax(scale * enc(xu) @ protos.T, 1) if len(xu) else torch.zeros((0, len(vocabulary)))
        best, pseudo = probs.max(1)
        keep = best > pseudo_margin
    xu_kept, yu_kept = xu[keep], pseudo[keep]

    def joint_loss() -> torch.Tensor:
        loss = ce(enc(xs), src_table, ys) + ce(enc(xt), tgt_table, yt)
        if len(xu_kept):
            loss = loss + 0.5 * ce(enc(xu_kept), tgt_table, yu_kept)
        return loss

    fit_full_batch([*encoder.parameters(), src_table, tgt_table], joint_loss, steps=steps // 2, lr=3e-3)
    tagger.tag_table = torch.nn.Parameter(torch.nn.functional.normalize(tgt_table.detach(), dim=1) * scale)
    return tagger


class NameTaggingInput(BaseModel):
    """Arguments of the ``name_tagging_transfer`` tool: sentences are lists of token vectors, tags are BIO strings."""

    source_tokens: list[list[list[float]]] = Field(description="source sentences: token embedding vectors")
    source_tags: list[list[str]] = Field(description="BIO tags of the source tokens")
    target_tokens: list[list[list[float]]] = Field(description="the few tagged target sentences")
    target_tags: list[list[str]] = Field(description="their BIO tags")
    unlabelled_tokens: list[list[list[float]]] = Field(default_factory=list, description="untagged target sentences")
    predict_tokens: list[list[list[float]]] = Field(min_length=1, description="target sentences to tag")
    method: Method = Field(default="metric", description="metric (the method) | finetune | target_only")
    steps: int = Field(default=300, gt=0)
    seed: int = 0


class NameTaggingOutput(BaseModel):
    """Result of the ``name_tagging_transfer`` tool."""

    tags: list[list[str]]
    vocabulary: list[str]


def _sentences(raw: list[list[list[float]]], name: str, dim: int | None) -> list[NDArray[np.float64]]:
    import numpy as np

    out = []
    for i, sentence in enumerate(raw):
        array = np.asarray(sentence, dtype=np.float64)
        if array.ndim != 2 or len(array) == 0:
            raise ToolError(f"{name}[{i}] must be a non-empty list of token vectors")
        if dim is not None and array.shape[1] != dim:
            raise ToolError(f"{name}[{i}] has {array.shape[1]}-d tokens, expected {dim}", hint="one embedding size")
        if not np.isfinite(array).all():
            raise ToolError(f"{name}[{i}] contains NaN or infinite values")
        out.append(array)
    return out


def _check_tags(sentences: list[NDArray[np.float64]], tags: list[list[str]], name: str) -> None:
    if len(tags) != len(sentences) or any(len(t) != len(s) for s, t in zip(sentences, tags, strict=False)):
        raise ToolError(f"{name} needs one tag per token of every sentence")


@tool(
    name="name_tagging_transfer",
    family="fewshot",
    paper=_PAPER,
    tags=("few-shot", "cross-lingual", "named entity", "metric learning", "needs:token embeddings+BIO tags"),
    heavy=True,
)
def name_tagging_transfer(args: NameTaggingInput) -> NameTaggingOutput:
    """Transfer a BIO name tagger to a new language/domain with few tags: contrastive types, pseudo-labels.

    ``method=metric`` is the method; ``finetune`` and ``target_only`` are its baselines.
    """
    if not args.source_tokens or not args.target_tokens:
        raise ToolError("need at least one source and one target sentence")
    source = _sentences(args.source_tokens, "source_tokens", None)
    dim = source[0].shape[1]
    target = _sentences(args.target_tokens, "target_tokens", dim)
    _check_tags(source, args.source_tags, "source_tags")
    _check_tags(target, args.target_tags, "target_tags")
    tagger = train_tagger(
        (source, args.source_tags),
        (target, args.target_tags),
        _sentences(args.unlabelled_tokens, "unlabelled_tokens", dim),
        method=args.method,
        steps=args.steps,
        seed=args.seed,
    )
    return NameTaggingOutput(
        tags=tagger.predict(_sentences(args.predict_tokens, "predict_tokens", dim)), vocabulary=tagger.vocabulary
    )
