"""LOOK (Feng et al., ICLR 2022): leave-one-out k-nearest-neighbour supervised pre-training.

*Rethinking Supervised Pre-training for Better Downstream Transferring.* Cross-entropy pre-training pulls every
sample of a class towards one prototype, collapsing the class's internal modes, which downstream tasks may need.
LOOK only asks each sample to agree with its *k nearest neighbours* in a memory bank of (normalised) features:

    L_i = −log( Σ_{j ∈ N_k(i), y_j = y_i} exp(s_ij / T) / Σ_{j ∈ N_k(i)} exp(s_ij / T) ),   s_ij = f_i · b_j

so a class with several modes can keep them apart (neighbours come from the sample's own mode). The bank holds one
entry per training sample, updated with momentum from the current batch; the sample's own entry is left out of its
neighbours. †When none of the k neighbours shares the label we add the nearest same-label bank entry to the set (so
the loss stays finite and pulls towards the closest mode of the right class); check the paper for its handling.

Exact properties (tests): with the bank holding one normalised prototype per class and ``k`` = number of classes,
LOOK is exactly softmax cross-entropy of the cosine classifier ``f·w_c / T``; the loss is zero when all k neighbours
share the label. Paper: the loss and the bank. Library: faiss (``IndexFlatIP``) for the neighbour search.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["LookInput", "LookOutput", "LookResult", "knn_indices", "look_loss", "look_objective", "train_look"]

_PAPER = "Feng et al., ICLR 2022: Rethinking Supervised Pre-training for Better Downstream Transferring"


def knn_indices(queries: torch.Tensor, bank: torch.Tensor, k: int, exclude: torch.Tensor | None = None) -> torch.Tensor:
    """Indices ``(B, k)`` of the ``k`` bank rows with the largest inner product to each query (faiss exact search).

    ``exclude[b]`` (a bank index, or −1) is never returned for query ``b`` (leave-one-out).
    """
    import faiss
    import numpy as np
    import torch

    if not 0 < k <= bank.shape[0] - (1 if exclude is not None else 0):
        raise ToolError(f"k={k} must be between 1 and the bank size ({bank.shape[0]}) minus the left-out sample")
    index = faiss.IndexFlatIP(bank.shape[1])
    index.add(np.ascontiguousarray(bank.detach().float().numpy()))
    extra = 1 if exclude is not None else 0
    _, found = index.search(np.ascontiguousarray(queries.detach().float().numpy()), k + extra)
    ids = torch.from_numpy(found).long()
    if exclude is None:
        return ids
    keep = ids != exclude.view(-1, 1)
    rows = [row[mask][:k] for row, mask in zip(ids, keep, strict=True)]
    return torch.stack(rows)


def look_objective(
    features: torch.Tensor,
    labels: torch.Tensor,
    bank: torch.Tensor,
    bank_labels: torch.Tensor,
    neighbours: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """Per-sample LOOK loss given neighbour indices ``(B, k)`` into the bank (features are normalised here)."""
    import torch
    import torch.nn.functional as F

    f = F.normalize(features, dim=-1)
    b = F.normalize(bank.detach(), dim=-1)
    sims = torch.einsum("bd,bkd->bk", f, b[neighbours]) / temperature
    same = bank_labels[neighbours] == labels.view(-1, 1)
    missing = ~same.any(dim=1)
    if bool(missing.any()):
        # the nearest same-label entry joins the neighbour set of samples with no same-label neighbour
        all_sims = f[missing] @ b.T / temperature
        all_sims = all_sims.masked_fill(bank_labels.view(1, -1) != labels[missing].view(-1, 1), float("-inf"))
        if bool(torch.isinf(all_sims.max(dim=1).values).any()):
            raise ToolError("a label has no entry in the memory bank", hint="the bank must cover every label")
        extra = torch.full((features.shape[0],), float("-inf"))
        extra[missing] = all_sims.max(dim=1).values
        sims = torch.cat([sims, extra.unsqueeze(1)], dim=1)
        same = torch.cat([same, missing.unsqueeze(1)], dim=1)
    positive = torch.logsumexp(sims.masked_fill(~same, float("-inf")), dim=1)
    return torch.logsumexp(sims, dim=1) - positive


def look_loss(
    features: torch.Tensor,
    labels: torch.Tensor,
    bank: torch.Tensor,
    bank_labels: torch.Tensor,
    *,
    k: int,
    temperature: float = 0.1,
    self_index: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean LOOK loss of a batch against a memory bank (neighbours found with faiss; ``self_index`` left out)."""
    import torch.nn.functional as F

    if features.shape[-1] != bank.shape[-1]:
        raise ToolError(f"feature width {features.shape[-1]} differs from the bank's {bank.shape[-1]}")
    if bank_labels.shape[0] != bank.shape[0] or labels.shape[0] != features.shape[0]:
        raise ToolError("every feature and every bank entry needs one label")
    neighbours = knn_indices(F.normalize(features.detach(), dim=-1), F.normalize(bank, dim=-1), k, self_index)
    return look_objective(features, labels, bank, bank_labels, neighbours, temperature).mean()


@dataclass
class LookResult:
    """Per-step losses and the final memory bank."""

    losses: list[float] = field(default_factory=list)
    bank: torch.Tensor | None = None


def train_look(
    encoder: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    k: int,
    steps: int,
    temperature: float = 0.1,
    momentum: float = 0.5,
    lr: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
) -> LookResult:
    """Train ``encoder`` (its output is the embedding) in place with LOOK against a per-sample memory bank."""
    import torch
    import torch.nn.functional as F

    from malot_distill.core.train import batches, fit

    with torch.no_grad():
        bank = F.normalize(encoder(x), dim=-1)
    order = batches(x.shape[0], batch_size, steps, seed)

    def loss_fn(step: int) -> torch.Tensor:
        idx = order[step]
        f = encoder(x[idx])
        loss = look_loss(f, y[idx], bank, y, k=k, temperature=temperature, self_index=idx)
        with torch.no_grad():
            bank[idx] = F.normalize(momentum * bank[idx] + (1 - momentum) * F.normalize(f, dim=-1), dim=-1)
        return loss

    encoder.train()
    losses = fit(encoder.parameters(), loss_fn, steps=steps, lr=lr)
    encoder.eval()
    return LookResult(losses=losses, bank=bank)


class LookInput(BaseModel):
    """Arguments of ``look_loss``."""

    data: str = Field(description=".safetensors with x (N×D), y; optional x_test, y_test for the kNN accuracy")
    out: str = Field(description="where to write the trained encoder (.safetensors, distill MLP format)")
    hidden: list[int] = Field(default=[64], min_length=1)
    embedding: int = Field(default=32, ge=1, description="embedding width")
    k: int = Field(default=10, ge=1, description="neighbours per sample")
    temperature: float = Field(default=0.1, gt=0)
    momentum: float = Field(default=0.5, ge=0, lt=1, description="memory-bank momentum")
    steps: int = Field(default=300, ge=1)
    lr: float = Field(default=1e-3, gt=0)
    batch_size: int = Field(default=64, ge=1)
    seed: int = 0


class LookOutput(BaseModel):
    """Result of ``look_loss``."""

    out: str
    loss_first: float
    loss_last: float
    knn_accuracy: float = Field(description="k-NN (cosine) accuracy of the embedding on x_test (or x, leave-one-out)")


@tool(
    name="look_loss",
    family="distill",
    paper=_PAPER,
    tags=("pre-training", "transfer", "knn", "memory-bank", "representation", "needs:data"),
)
def look_loss_tool(args: LookInput) -> LookOutput:
    """Pre-train an encoder with LOOK: each sample only has to agree with its k nearest neighbours in a memory
    bank, which keeps multi-modal classes apart and transfers better than cross-entropy features."""
    import torch
    import torch.nn.functional as F

    from malot_distill.core.data import check_labels, load_tensors, require
    from malot_distill.core.mlp import build_mlp, save_mlp

    tensors = load_tensors(args.data)
    x = require(tensors, "x", dim=2)
    y = check_labels(x, require(tensors, "y"))
    if args.k >= x.shape[0]:
        raise ToolError(f"k={args.k} needs more than {args.k} training samples, got {x.shape[0]}")
    encoder = build_mlp([x.shape[1], *args.hidden, args.embedding], seed=args.seed)
    result = train_look(
        encoder, x, y, k=args.k, steps=args.steps, temperature=args.temperature, momentum=args.momentum,
        lr=args.lr, batch_size=args.batch_size, seed=args.seed,
    )  # fmt: skip
    save_mlp(encoder, args.out)
    with torch.no_grad():
        bank = F.normalize(encoder(x), dim=-1)
        if "x_test" in tensors:
            xq = require(tensors, "x_test", dim=2)
            yq = check_labels(xq, require(tensors, "y_test"))
            nn_idx = knn_indices(F.normalize(encoder(xq), dim=-1), bank, args.k)
        else:
            yq = y
            nn_idx = knn_indices(bank, bank, args.k, torch.arange(x.shape[0]))
        votes = F.one_hot(y[nn_idx], int(y.max()) + 1).sum(1)
        knn = float((votes.argmax(-1) == yq).float().mean())
    return LookOutput(out=args.out, loss_first=result.losses[0], loss_last=result.losses[-1], knn_accuracy=knn)
