"""Branch-Train-Merge (Li et al., "Branch-Train-Merge: Embarrassingly Parallel Training of Expert Language Models",
2022), weight-space side.

BTM grows a set of domain experts (an "ELMforest"). A new expert is *branched* from a weighted parameter average of
existing experts, weighted by how relevant each is to the new domain: the domain posterior
``p(j | x) ∝ p(x | j) p(j)`` of the new domain's texts under each expert, averaged over texts, optionally keeping
only the top-k experts. The experts can also be *collapsed* into one model by parameter averaging (uniform or
posterior-weighted). Ensembling the experts' outputs at inference belongs to the ``fusion`` family.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_weights import FAMILY
from malot_weights.core import merge_tensorwise

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "BtmAverageInput",
    "BtmBranchInput",
    "BtmOutput",
    "btm_average",
    "btm_branch",
    "domain_posterior",
    "sequence_log_likelihoods",
    "top_k_weights",
]

PAPER = "Li et al., Branch-Train-Merge: Embarrassingly Parallel Training of Expert Language Models (2022)"


def domain_posterior(log_likelihoods: torch.Tensor, prior: Sequence[float] | None = None) -> list[float]:
    """Average over texts of ``p(j | x) ∝ p(x | j) p(j)``; ``log_likelihoods`` is ``[experts, texts]``.

    Equal likelihoods give back the prior (uniform by default).
    """
    import torch

    n_experts = log_likelihoods.shape[0]
    p = torch.full((n_experts,), 1.0 / n_experts, dtype=torch.float64) if prior is None else torch.tensor(prior)
    if p.numel() != n_experts or bool((p < 0).any()) or float(p.sum()) <= 0:
        raise ToolError(f"the prior needs {n_experts} non-negative values with a positive sum")
    log_prior = torch.log(p.double() / p.double().sum()).unsqueeze(1)
    joint = log_likelihoods.double() + log_prior
    posterior = torch.softmax(joint, dim=0)  # per text, over experts
    return [float(x) for x in posterior.mean(dim=1)]


def top_k_weights(weights: Sequence[float], k: int | None) -> list[float]:
    """Keep the ``k`` largest weights (ties by position), zero the rest, renormalise to sum 1."""
    w = [float(x) for x in weights]
    if not all(math.isfinite(x) for x in w):
        raise ToolError(f"non-finite expert weights {w}")
    if k is not None and 0 < k < len(w):
        keep = set(sorted(range(len(w)), key=lambda i: (-w[i], i))[:k])
        w = [x if i in keep else 0.0 for i, x in enumerate(w)]
    total = sum(w)
    if total <= 0 or any(x < 0 for x in w):
        raise ToolError(f"expert weights must be non-negative with a positive sum, got {w}")
    return [x / total for x in w]


def sequence_log_likelihoods(
    model: nn.Module, tokenizer: object, texts: Sequence[str], *, max_length: int = 128
) -> torch.Tensor:
    """``log p(x)`` of each text under a causal LM (sum of next-token log-probabilities)."""
    import torch

    out = []
    with torch.no_grad():
        for text in texts:
            enc = tokenizer([text], truncation=True, max_length=max_length, return_tensors="pt")  # type: ignore[operator]
            ids = enc["input_ids"]
            logits = model(input_ids=ids, attention_mask=enc["attention_mask"]).logits[:, :-1]
            logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, ids[:, 1:].unsqueeze(-1))
            out.append(float(logp.sum()))
    return torch.tensor(out, dtype=torch.float64)


def _posterior_from_data(experts: Sequence[str], data: str, n_texts: int, max_length: int) -> list[float]:
    import torch

    from malot_weights.causal_lm import load_causal_lm, load_texts, load_tokenizer

    texts = load_texts(data)[:n_texts]
    rows = []
    for path in experts:
        if not Path(path).is_dir():
            raise ToolError(
                f"estimating the domain posterior needs Hugging Face model folders, got {path}",
                hint="pass expert folders, or explicit 'weights'",
            )
        model = load_causal_lm(path)
        model.eval()
        rows.append(sequence_log_likelihoods(model, load_tokenizer(path), texts, max_length=max_length))
        del model
    return domain_posterior(torch.stack(rows))


def _average_to(experts: Sequence[str], weights: Sequence[float], output: str, note: str) -> BtmOutput:

    used = [(p, w) for p, w in zip(experts, weights, strict=True) if w > 0]
    paths = [p for p, _ in used]
    ws = [w for _, w in used]

    def combine(name: str, tensors: list[torch.Tensor]) -> torch.Tensor:
        acc = tensors[0].float() * ws[0]
        for w, t in zip(ws[1:], tensors[1:], strict=True):
            acc.add_(t.float(), alpha=w)
        return acc.to(tensors[0].dtype)

    reference = next((p for p in paths if Path(p).is_dir()), None)
    _, report = merge_tensorwise(
        paths,
        combine,
        output=output,
        copy_side_files_from=reference,
        metadata={"merged_by": f"malot-weights {note}", "weights": ",".join(f"{w:.6g}" for w in weights)},
        elementwise=True,
    )
    return BtmOutput(
        output=output,
        files=[str(f) for f in report.files],
        weights=[float(w) for w in weights],
        tensors_merged=report.merged,
        bytes_written=report.bytes_written,
    )


class BtmBranchInput(BaseModel):
    """Arguments of ``btm_branch``."""

    experts: list[str] = Field(min_length=1, description="Existing experts: .safetensors files or model folders.")
    output: str = Field(description="Where to write the new expert's initial weights.")
    weights: list[float] | None = Field(None, description="Expert weights; default: the domain posterior on 'data'.")
    data: str | None = Field(None, description="Texts of the new domain (for the posterior; experts as HF folders).")
    top_k: int | None = Field(None, ge=1, description="Branch from the k most relevant experts only.")
    n_texts: int = Field(32, ge=1, description="Texts of 'data' used for the posterior.")
    max_length: int = Field(128, ge=2, description="Token limit per text.")


class BtmAverageInput(BaseModel):
    """Arguments of ``btm_average``."""

    experts: list[str] = Field(min_length=1, description="Experts to collapse: .safetensors files or model folders.")
    output: str = Field(description="Where to write the averaged model.")
    weights: list[float] | None = Field(None, description="Expert weights (default: uniform, or posterior on data).")
    data: str | None = Field(None, description="Texts of a target domain to weight experts by their posterior.")
    n_texts: int = Field(32, ge=1, description="Texts of 'data' used for the posterior.")
    max_length: int = Field(128, ge=2, description="Token limit per text.")


class BtmOutput(BaseModel):
    """Result of ``btm_branch`` and ``btm_average``: the weights used per expert and what was written."""

    output: str
    files: list[str]
    weights: list[float]
    tensors_merged: int
    bytes_written: int


@tool(family=FAMILY, paper=PAPER, tags=["merging", "experts", "btm"], heavy=True)
def btm_branch(args: BtmBranchInput) -> BtmOutput:
    """Branch a new BTM expert: initialise it as the weighted parameter average of existing experts.

    The weights are given, or estimated as the domain posterior of the new domain's texts under each expert
    (optionally only the top-k experts), as in Branch-Train-Merge. Train the written model on the new domain next.
    """
    if args.weights is not None:
        raw = args.weights
    elif args.data is not None:
        raw = _posterior_from_data(args.experts, args.data, args.n_texts, args.max_length)
    else:
        raise ToolError("btm_branch needs 'weights' or 'data'", hint="pass new-domain texts to weight the experts")
    if len(raw) != len(args.experts):
        raise ToolError(f"{len(args.experts)} experts but {len(raw)} weights")
    return _average_to(args.experts, top_k_weights(raw, args.top_k), args.output, "btm_branch")


@tool(family=FAMILY, paper=PAPER, tags=["merging", "experts", "btm"], heavy=True)
def btm_average(args: BtmAverageInput) -> BtmOutput:
    """Collapse BTM experts into one model by parameter averaging (uniform, given, or posterior weights)."""
    if args.weights is not None:
        raw = args.weights
    elif args.data is not None:
        raw = _posterior_from_data(args.experts, args.data, args.n_texts, args.max_length)
    else:
        raw = [1.0] * len(args.experts)
    if len(raw) != len(args.experts):
        raise ToolError(f"{len(args.experts)} experts but {len(raw)} weights")
    return _average_to(args.experts, top_k_weights(raw, None), args.output, "btm_average")
