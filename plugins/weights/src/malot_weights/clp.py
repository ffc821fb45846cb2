"""CLP-Transfer: Cross-Lingual and Progressive Transfer (Ostendorff & Rehm, 2023).

To train a large model in a target language, start from a large model trained in a source language and a *small*
model already trained with the target tokenizer. Token embeddings of the large target model are built as:

* tokens in both vocabularies: copy the large source model's embedding;
* new tokens ``v``: ``e_v = Σ_u δ(v, u)·e_u`` over the overlapping tokens ``u``, where ``δ(v, u)`` is the cosine
  similarity of ``v`` and ``u`` in the *small* model's embedding space, normalised to sum to one;

every other weight is reused from the large source model unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool

if TYPE_CHECKING:
    import torch

__all__ = ["ClpEmbeddings", "ClpTransferInput", "ClpTransferOutput", "clp_embeddings", "clp_transfer"]


@dataclass
class ClpEmbeddings:
    """The embeddings CLP-Transfer built for the target vocabulary, and how many tokens each rule covered."""

    weight: torch.Tensor
    overlapping: int
    new: int
    unmapped_rows: int


def clp_embeddings(
    source: torch.Tensor,
    source_vocab: Mapping[str, int],
    helper: torch.Tensor,
    target_vocab: Mapping[str, int],
    *,
    top_k: int | None = None,
    negative: Literal["clip", "keep"] = "clip",
    rows: int | None = None,
    seed: int = 0,
) -> ClpEmbeddings:
    """Embeddings for ``target_vocab`` in the space of the large ``source`` embeddings.

    ``helper`` holds the small model's embeddings indexed by ``target_vocab``. Overlapping tokens are copied; new
    tokens are the similarity-weighted sum of overlapping tokens' source embeddings (all of them, as in the paper,
    or the ``top_k`` most similar). ``negative="keep"`` uses the raw cosine similarities exactly as the reference
    implementation does; the default ``"clip"`` sets negative similarities to zero first, because with raw cosines
    the normalising sum can come close to zero and blow the weights up (it stays far from zero only when the
    helper's embeddings are strongly anisotropic, as in large pre-trained models). Rows no token maps to (padding
    rows; ``rows`` defaults to the largest target id + 1) are drawn from a normal with the source embeddings'
    per-dimension mean and std.
    """
    import torch
    import torch.nn.functional as F

    overlap = sorted(set(source_vocab) & set(target_vocab))
    if not overlap:
        raise ToolError("the source and target vocabularies share no token", hint="CLP-Transfer needs overlap")
    new = sorted(set(target_vocab) - set(source_vocab))
    size = rows if rows is not None else max(target_vocab.values()) + 1
    if max(target_vocab.values()) >= size or max(target_vocab.values()) >= helper.shape[0]:
        raise ToolError("target token ids exceed the helper embeddings or the requested number of rows")
    src = source.detach().to(torch.float32)
    generator = torch.Generator().manual_seed(seed)
    mean, std = src.mean(0), src.std(0)
    out = mean + std * torch.randn(size, src.shape[1], generator=generator)
    src_ids = torch.tensor([source_vocab[t] for t in overlap])
    tgt_ids = torch.tensor([target_vocab[t] for t in overlap])
    out[tgt_ids] = src[src_ids]
    if new:
        anchors = src[src_ids]
        helper_f = helper.detach().to(torch.float32)
        new_ids = torch.tensor([target_vocab[t] for t in new])
        sims = F.normalize(helper_f[new_ids], dim=1) @ F.normalize(helper_f[tgt_ids], dim=1).T
        if negative == "clip":
            sims = sims.clamp_min(0.0)
        if top_k is not None and top_k < len(overlap):
            kept = torch.topk(sims, top_k, dim=1)
            sims = torch.zeros_like(sims).scatter(1, kept.indices, kept.values)
        totals = sims.sum(1, keepdim=True)
        degenerate = totals.abs() < 1e-6
        weights = torch.where(degenerate, torch.full_like(sims, 1.0 / len(overlap)), sims / totals)
        out[new_ids] = weights @ anchors
    unmapped = size - len(set(target_vocab.values()))
    return ClpEmbeddings(weight=out.to(source.dtype), overlapping=len(overlap), new=len(new), unmapped_rows=unmapped)


_PAPER = "Efficient Language Model Training through Cross-Lingual and Progressive Transfer Learning (Ostendorff & Rehm)"


class ClpTransferInput(BaseModel):
    """Arguments of the ``clp_transfer`` tool."""

    source: str = Field(description="Hugging Face folder of the large model trained in the source language")
    helper: str = Field(description="Hugging Face folder of the small model with the target tokenizer")
    out: str = Field(description="output model folder (large model, target tokenizer)")
    top_k: int | None = Field(default=None, gt=0, description="combine only the k most similar overlapping tokens")
    negative: Literal["clip", "keep"] = Field(
        default="clip", description="'keep': raw cosine weights as in the paper's code; 'clip': drop negative ones"
    )
    seed: int = 0


class ClpTransferOutput(BaseModel):
    """Result of the ``clp_transfer`` tool."""

    out: str
    vocab_size: int
    overlapping_tokens: int
    new_tokens: int
    output_embeddings: str = Field(description="'tied', or 'transferred' when the LM head is separate")


@tool(name="clp_transfer", family="weights", paper=_PAPER, tags=("embeddings", "cross-lingual", "initialisation"))
def clp_transfer(args: ClpTransferInput) -> ClpTransferOutput:
    """Initialise a large model for a new vocabulary from a small model's token similarities (CLP-Transfer).

    Copies the embeddings of shared tokens, builds new tokens as similarity-weighted sums of shared ones, keeps
    every other weight of the large model, and saves it with the small model's tokenizer.
    """
    import torch

    from malot_weights.causal_lm import load_causal_lm, load_tokenizer

    source_model: Any = load_causal_lm(args.source)
    helper_model: Any = load_causal_lm(args.helper)
    source_vocab = load_tokenizer(args.source).get_vocab()
    target_tokenizer = load_tokenizer(args.helper)
    target_vocab = target_tokenizer.get_vocab()
    helper_in = helper_model.get_input_embeddings().weight
    rows = max(helper_in.shape[0], max(target_vocab.values()) + 1)
    inputs = clp_embeddings(
        source_model.get_input_embeddings().weight,
        source_vocab,
        helper_in,
        target_vocab,
        top_k=args.top_k,
        negative=args.negative,
        rows=rows,
        seed=args.seed,
    )
    source_out = source_model.get_output_embeddings()
    tied = source_out is None or source_out.weight is source_model.get_input_embeddings().weight
    outputs = None
    if not tied:
        outputs = clp_embeddings(
            source_out.weight,
            source_vocab,
            helper_in,
            target_vocab,
            top_k=args.top_k,
            negative=args.negative,
            rows=rows,
            seed=args.seed + 1,
        )
    source_model.resize_token_embeddings(rows)
    with torch.no_grad():
        source_model.get_input_embeddings().weight.copy_(inputs.weight)
        if outputs is not None:
            source_model.get_output_embeddings().weight.copy_(outputs.weight)
    for key in ("pad_token_id", "bos_token_id", "eos_token_id"):
        setattr(source_model.config, key, getattr(target_tokenizer, key, None))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    source_model.save_pretrained(str(out))
    target_tokenizer.save_pretrained(str(out))
    return ClpTransferOutput(
        out=str(out),
        vocab_size=rows,
        overlapping_tokens=inputs.overlapping,
        new_tokens=inputs.new,
        output_embeddings="tied" if tied else "transferred",
    )
