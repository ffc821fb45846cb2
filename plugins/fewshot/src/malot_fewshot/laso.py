"""LaSO: label-set operation networks that synthesise features for the intersection, union and difference of the
label sets of two examples (Alfassy et al., CVPR 2019).

Given feature vectors ``F_a, F_b`` of two multi-label examples with label sets ``L_a, L_b``, three networks
``M_∩, M_∪, M_∖`` map ``[F_a; F_b]`` to a feature vector whose label set, read by a multi-label classifier ``C``
trained on real features, is ``L_a ∩ L_b``, ``L_a ∪ L_b`` and ``L_a ∖ L_b``. Training minimises the binary
cross-entropy of ``C(M_op(F_a, F_b))`` against the set-operated labels (the paper's main loss, ``C`` frozen here
because the backbone is), plus MSE regularisers: symmetry of ``∩`` and ``∪`` (``M(a, b) ≈ M(b, a)``) and the set
identity ``M_∪(M_∖(a, b), M_∩(a, b)) ≈ a`` († our reading of the paper's reconstruction terms). The synthesised
features augment few-shot multi-label training sets. The paper's part: the three networks and their losses; the
library's (torch): the MLPs and the optimiser. Property: ``union(x, x)`` keeps ``x``'s label set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_fewshot.core.arrays import as_matrix

if TYPE_CHECKING:
    import numpy as np
    import torch
    from numpy.typing import NDArray

__all__ = ["LasoInput", "LasoModel", "LasoOutput", "laso", "set_targets", "train_laso"]

_PAPER = "LaSO: Label-Set Operations networks for multi-label few-shot learning (Alfassy et al., CVPR 2019)"

Op = Literal["intersection", "union", "subtraction"]
OPS: tuple[Op, ...] = ("intersection", "union", "subtraction")


def set_targets(la: torch.Tensor, lb: torch.Tensor, op: Op) -> torch.Tensor:
    """Multi-hot label sets of ``L_a ∩ L_b``, ``L_a ∪ L_b`` or ``L_a ∖ L_b``."""
    if op == "intersection":
        return la * lb
    if op == "union":
        return la + lb - la * lb
    return la * (1 - lb)


@dataclass
class LasoModel:
    """The frozen multi-label classifier and the three operation networks."""

    classifier: torch.nn.Module
    nets: dict[str, torch.nn.Module]

    def apply(self, op: Op, a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
        """Synthesised features ``M_op(a, b)`` (rows of ``a`` and ``b`` paired)."""
        import numpy as np
        import torch

        with torch.no_grad():
            pair = torch.as_tensor(np.hstack([a, b]), dtype=torch.float32)
            return np.asarray(self.nets[op](pair).numpy(), dtype=np.float64)

    def label_scores(self, features: NDArray[np.float64]) -> NDArray[np.float64]:
        """The classifier's label probabilities for feature rows."""
        import numpy as np
        import torch

        with torch.no_grad():
            out = torch.sigmoid(self.classifier(torch.as_tensor(features, dtype=torch.float32)))
        return np.asarray(out.numpy(), dtype=np.float64)


def train_laso(
    features: NDArray[np.float64],
    labels: NDArray[np.float64],
    *,
    hidden: int = 128,
    classifier_steps: int = 300,
    steps: int = 600,
    batch: int = 128,
    lr: float = 1e-3,
    reg_weight: float = 0.1,
    seed: int = 0,
) -> LasoModel:
    """Train ``C`` on the real features, freeze it, then train the three LaSO networks on random pairs."""
    import torch
    from torch import nn

    from malot_fewshot.core.training import fit_full_batch, mlp, seeded

    seeded(seed)
    x = torch.as_tensor(features, dtype=torch.float32)
    y = torch.as_tensor(labels, dtype=torch.float32)
    d, k = x.shape[1], y.shape[1]
    classifier = mlp(d, hidden, k)
    fit_full_batch(
        list(classifier.parameters()),
        lambda: nn.functional.binary_cross_entropy_with_logits(classifier(x), y),
        steps=classifier_steps,
        lr=1e-2,
    )
    classifier.requires_grad_(False)
    nets: dict[str, nn.Module] = {op: mlp(2 * d, hidden, d) for op in OPS}
    params = [p for net in nets.values() for p in net.parameters()]
    optimizer = torch.optim.Adam(params, lr=lr)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        i = torch.randint(len(x), (batch,), generator=generator)
        j = torch.randint(len(x), (batch,), generator=generator)
        a, b, la, lb = x[i], x[j], y[i], y[j]
        ab, ba = torch.cat([a, b], 1), torch.cat([b, a], 1)
        out = {op: nets[op](ab) for op in OPS}
        loss = sum(
            nn.functional.binary_cross_entropy_with_logits(classifier(out[op]), set_targets(la, lb, op)) for op in OPS
        )
        symmetry = sum(nn.functional.mse_loss(out[op], nets[op](ba)) for op in ("intersection", "union"))
        rebuilt = nets["union"](torch.cat([out["subtraction"], out["intersection"]], 1))
        total = loss + reg_weight * (symmetry + nn.functional.mse_loss(rebuilt, a))
        optimizer.zero_grad(set_to_none=True)
        total.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
    for net in nets.values():
        net.eval()
    return LasoModel(classifier=classifier, nets=nets)


class LasoInput(BaseModel):
    """Arguments of the ``laso`` tool."""

    features: list[list[float]] = Field(description="feature vectors of multi-label training examples")
    labels: list[list[int]] = Field(description="multi-hot label vector (0/1) of every example")
    pairs: list[tuple[int, int]] = Field(min_length=1, description="(a, b) row indices of features to combine")
    op: Op = Field(description="intersection | union | subtraction (a minus b)")
    steps: int = Field(default=600, gt=0, description="LaSO training steps")
    hidden: int = Field(default=128, gt=0)
    seed: int = 0


class LasoOutput(BaseModel):
    """Result of the ``laso`` tool."""

    features: list[list[float]]
    predicted_labels: list[list[int]]
    label_scores: list[list[float]]


@tool(
    name="laso",
    family="fewshot",
    paper=_PAPER,
    tags=("few-shot", "multi-label", "feature synthesis", "augmentation", "needs:features+multi-hot labels"),
    heavy=True,
)
def laso(args: LasoInput) -> LasoOutput:
    """Synthesise features for the intersection/union/difference of two examples' label sets (LaSO networks).

    Trains a multi-label classifier and the three LaSO networks on ``features``/``labels``, then combines ``pairs``.
    """
    import numpy as np

    features = as_matrix(args.features, "features", min_rows=2)
    labels = as_matrix(args.labels, "labels")
    if len(labels) != len(features):
        raise ToolError(f"{len(labels)} label rows for {len(features)} feature rows", hint="one label row per example")
    if not np.isin(labels, (0.0, 1.0)).all():
        raise ToolError("labels must be multi-hot 0/1 vectors", hint="one column per label, 1 where it applies")
    pairs = np.asarray(args.pairs, dtype=np.int64)
    if pairs.min() < 0 or pairs.max() >= len(features):
        raise ToolError(f"a pair indexes a row outside 0..{len(features) - 1}")
    model = train_laso(features, labels, hidden=args.hidden, steps=args.steps, seed=args.seed)
    out = model.apply(args.op, features[pairs[:, 0]], features[pairs[:, 1]])
    scores = model.label_scores(out)
    return LasoOutput(
        features=out.round(6).tolist(),
        predicted_labels=(scores > 0.5).astype(int).tolist(),
        label_scores=scores.round(6).tolist(),
    )
