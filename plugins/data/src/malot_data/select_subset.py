"""Neural subset selection with background information (Xie et al., "Enhancing Neural Subset Selection: Integrating
Background Information into Set Representations", ICLR 2024).

Neural subset selection learns ``P(S | V)``: which subset ``S`` of a ground set ``V`` is optimal. Earlier models
(DeepSets-style EquiVSet) score a subset from its own elements only, although the best subset depends on what else is
in ``V`` (an anomaly is only anomalous relative to the rest). The paper shows the optimal set function must be
built from an invariant representation of the superset as well (§3, Theorem 3.5): every element ``i`` is scored by

    s_i = ρ( φ(x_i), Pool_{j ∈ V} ψ(x_j) ),

with a permutation-invariant pool (mean here) of the background ``V``, so the scores are permutation-*equivariant*
and the selected subset permutation-*invariant*. Training maximises the likelihood of the observed optimal subsets
under the mean-field factorisation ``P(S | V) = Π_{i∈S} σ(s_i) Π_{i∉S} (1 − σ(s_i))`` (the MFVI surrogate of
EquiVSet, one step), i.e. a per-element binary cross-entropy; selection keeps the top-``k`` scores or those with
``σ(s_i) > 0.5``. ``background=False`` drops the pooled term: the ablation without background information.

The architecture and objective are the paper's, on small MLPs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_data.core.arrays import load_array

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "SelectSubsetInput",
    "SelectSubsetOutput",
    "SubsetTraining",
    "build_set_scorer",
    "jaccard",
    "select_subset",
    "select_top",
    "train_set_scorer",
]

_PAPER = (
    "Enhancing Neural Subset Selection: Integrating Background Information into Set Representations "
    "(Xie et al., ICLR 2024)"
)


def build_set_scorer(dim: int, hidden: int = 64, *, background: bool = True, seed: int = 0) -> nn.Module:
    """The element scorer ``ρ(φ(x_i), mean_j ψ(x_j))`` (``background=False``: ``ρ(φ(x_i))``)."""
    import torch
    from torch import nn

    torch.manual_seed(seed)

    class SetScorer(nn.Module):
        """Scores every element of a padded batch of sets (``x``: B×n×d, ``mask``: B×n, True = present)."""

        def __init__(self) -> None:
            super().__init__()
            self.background = background
            self.phi = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
            self.psi = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
            width = 2 * hidden if background else hidden
            self.rho = nn.Sequential(nn.ReLU(), nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, 1))

        def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            own = self.phi(x)
            if self.background:
                weights = mask.float().unsqueeze(-1)
                pooled = (self.psi(x) * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)
                own = torch.cat([own, pooled.unsqueeze(1).expand_as(own)], dim=-1)
            scores: torch.Tensor = self.rho(own).squeeze(-1)
            return scores.masked_fill(~mask, float("-inf"))

    return SetScorer()


@dataclass
class SubsetTraining:
    """The trained scorer and its per-step training losses."""

    model: nn.Module
    losses: list[float] = field(default_factory=list)


def _check_sets(sets: Any, mask: Any | None, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    import numpy as np
    import torch

    x = np.asarray(sets, dtype=np.float64)
    if x.ndim != 3 or 0 in x.shape:
        raise ToolError(
            f"{name} must be sets × elements × features, got shape {x.shape}",
            hint="pad sets to one size and pass a mask",
        )
    if not np.isfinite(x).all():
        raise ToolError(f"{name} contains NaN or infinite values", hint="drop or impute them first")
    m = np.ones(x.shape[:2], dtype=bool) if mask is None else np.asarray(mask).astype(bool)
    if m.shape != x.shape[:2]:
        raise ToolError(f"{name} mask has shape {m.shape}, expected {x.shape[:2]}")
    if not m.any(axis=1).all():
        raise ToolError(f"{name} has an empty set", hint="every set needs at least one element")
    return torch.tensor(x, dtype=torch.float32), torch.tensor(m)


def train_set_scorer(
    sets: Any,
    targets: Any,
    mask: Any | None = None,
    *,
    background: bool = True,
    steps: int = 300,
    lr: float = 3e-3,
    batch_size: int = 32,
    hidden: int = 64,
    seed: int = 0,
) -> SubsetTraining:
    """Fit the scorer to observed optimal subsets (``targets``: sets × elements, 1 = in the subset)."""
    import numpy as np
    import torch

    x, m = _check_sets(sets, mask, "sets")
    y = np.asarray(targets, dtype=np.float64)
    if y.shape != tuple(x.shape[:2]) or not np.isin(y, (0.0, 1.0)).all():
        raise ToolError(f"targets must be 0/1 of shape {tuple(x.shape[:2])}", hint="mark subset members with 1")
    yt = torch.tensor(y, dtype=torch.float32)
    model = build_set_scorer(x.shape[2], hidden, background=background, seed=seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    for _ in range(steps):
        idx = torch.randperm(x.shape[0], generator=generator)[: min(batch_size, x.shape[0])]
        logits = model(x[idx], m[idx])
        present = m[idx]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits[present], yt[idx][present])
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        losses.append(float(loss.detach()))
    model.eval()
    return SubsetTraining(model=model, losses=losses)


def select_top(model: nn.Module, sets: Any, mask: Any | None = None, k: int | None = None) -> list[list[int]]:
    """Per set: the ``k`` best-scoring elements (sorted indices), or those with ``σ(s_i) > 0.5`` when ``k`` is None."""
    import torch

    x, m = _check_sets(sets, mask, "sets")
    with torch.no_grad():
        scores = model(x, m)
    out: list[list[int]] = []
    for row, present in zip(scores, m, strict=True):
        if k is None:
            chosen = torch.nonzero((row > 0) & present).squeeze(1).tolist()
        else:
            size = int(present.sum())
            if not 0 < k <= size:
                raise ToolError(f"k={k} must be between 1 and the set size {size}")
            chosen = torch.topk(row, k).indices.tolist()
        out.append(sorted(int(i) for i in chosen))
    return out


def jaccard(a: list[int], b: list[int]) -> float:
    """|a ∩ b| / |a ∪ b| (1 for two empty sets)."""
    union = set(a) | set(b)
    return len(set(a) & set(b)) / len(union) if union else 1.0


class SelectSubsetInput(BaseModel):
    """Arguments of ``select_subset`` (array files: .npy, .npz, FILE.npz:KEY)."""

    sets: str = Field(description="training ground sets, padded: sets × elements × features")
    targets: str = Field(description="their optimal subsets: sets × elements, 1 = member")
    mask: str | None = Field(default=None, description="sets × elements, 1 = element present (default: all)")
    queries: str = Field(description="ground sets to select from: queries × elements × features")
    query_mask: str | None = Field(default=None, description="queries × elements presence mask")
    k: int | None = Field(default=None, gt=0, description="subset size (default: every element with σ(s) > 0.5)")
    background: bool = Field(default=True, description="use the superset's invariant representation (the paper)")
    steps: int = Field(default=300, gt=0)
    hidden: int = Field(default=64, gt=0)
    seed: int = 0


class SelectSubsetOutput(BaseModel):
    """Result of ``select_subset``."""

    selections: list[list[int]]
    first_loss: float
    last_loss: float


@tool(
    name="select_subset",
    family="data",
    paper=_PAPER,
    tags=("subset-selection", "set-function", "data-selection", "few-shot", "needs:example-subsets"),
)
def select_subset(args: SelectSubsetInput) -> SelectSubsetOutput:
    """Neural subset selection with background information: learn P(S | V) from examples, select from new sets.

    Trains a permutation-equivariant element scorer that sees each element and an invariant summary of its whole
    ground set on example (ground set, optimal subset) pairs, then selects subsets of the query sets.
    """
    sets = load_array(args.sets, name="sets")
    targets = load_array(args.targets, name="targets")
    mask = load_array(args.mask, name="mask") if args.mask else None
    trained = train_set_scorer(
        sets, targets, mask, background=args.background, steps=args.steps, hidden=args.hidden, seed=args.seed
    )
    queries = load_array(args.queries, name="queries")
    if queries.ndim == 3 and sets.ndim == 3 and queries.shape[2] != sets.shape[2]:
        raise ToolError(
            f"queries have {queries.shape[2]} features, training sets {sets.shape[2]}",
            hint="describe elements with the same features",
        )
    query_mask = load_array(args.query_mask, name="query_mask") if args.query_mask else None
    selections = select_top(trained.model, queries, query_mask, args.k)
    k = min(10, len(trained.losses))
    return SelectSubsetOutput(
        selections=selections,
        first_loss=sum(trained.losses[:k]) / k,
        last_loss=sum(trained.losses[-k:]) / k,
    )
