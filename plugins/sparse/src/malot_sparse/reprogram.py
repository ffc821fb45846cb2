"""Reprogramming lottery tickets: linear probing vs input prompting on dense and sparse source models.

Misra et al., "Reprogramming under constraints: Revisiting efficient and reliable transferability of lottery
tickets" (2023) compare two ways of adapting a frozen source classifier to a target task, on the dense model and on
its lottery tickets, by accuracy and by calibration (ECE):

* **linear probing (LP)**: a new linear head trained on the frozen penultimate features, ``ŷ = W·φ(x) + b``;
* **visual prompting / reprogramming (VP)**: the model and its head stay frozen; a learnable input perturbation
  ``δ`` is added to the (zero-padded) target input, ``x' = pad(x) + δ``, and target classes read source logits through
  a label mapping (frequency label mapping, as in ILM-VP: each target class takes, one-to-one and greedily, the
  source class the source model predicts most often for it; or simply the first classes).

Here the inputs are feature vectors rather than images, so the "visual" prompt is an additive prompt over every
input feature (padding features included, like a border prompt). ECE uses 15 equal-width bins (Guo et al., 2017).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "ReprogramResult",
    "ReprogramTicketInput",
    "ReprogramTicketOutput",
    "frequency_label_mapping",
    "input_prompt",
    "linear_probe",
    "reprogram_ticket",
]

Mapping = Literal["frequency", "first"]


@dataclass
class ReprogramResult:
    """Test accuracy and ECE of one adaptation, with the target-class probabilities it produced."""

    accuracy: float
    ece: float
    probs: torch.Tensor


def _features(model: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """The input of the model's last layer (its penultimate features)."""
    import torch

    with torch.no_grad():
        return model[:-1](x)  # type: ignore[no-any-return]


def _score(probs: torch.Tensor, y: torch.Tensor, bins: int) -> ReprogramResult:
    from malot_sparse.core.calibration import expected_calibration_error

    accuracy = float((probs.argmax(dim=1) == y).float().mean())
    return ReprogramResult(accuracy=accuracy, ece=expected_calibration_error(probs, y, bins), probs=probs)


def linear_probe(
    model: nn.Sequential,
    x: torch.Tensor,
    y: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    *,
    classes: int,
    steps: int = 300,
    lr: float = 0.01,
    seed: int = 0,
    bins: int = 15,
) -> ReprogramResult:
    """LP: train a fresh linear head on the frozen model's penultimate features; score on the test split.

    Target inputs with fewer features than the source takes are zero-padded (the same placement input prompting
    uses, without the prompt).
    """
    import torch
    import torch.nn.functional as F

    from malot_sparse.core.mlp import linear_layers

    width = linear_layers(model)[0].in_features
    features, test_features = _features(model, _pad(x, width)), _features(model, _pad(x_test, width))
    torch.manual_seed(seed)
    head = torch.nn.Linear(features.shape[1], classes)
    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(head(features), y).backward()  # type: ignore[no-untyped-call]
        optimizer.step()
    with torch.no_grad():
        probs = F.softmax(head(test_features), dim=1)
    return _score(probs, y_test, bins)


def _pad(x: torch.Tensor, width: int) -> torch.Tensor:
    import torch.nn.functional as F

    if x.shape[1] > width:
        raise ToolError(
            f"target inputs have {x.shape[1]} features, the source model takes {width}",
            hint="input prompting pads target inputs into the source input; use linear probing or fewer features",
        )
    return F.pad(x, (0, width - x.shape[1]))


def frequency_label_mapping(model: nn.Module, x: torch.Tensor, y: torch.Tensor, classes: int) -> list[int]:
    """FLM: greedily give each target class the source class the model predicts most often on it (one-to-one)."""
    import torch

    with torch.no_grad():
        predicted = model(x).argmax(dim=1)
    source_classes = int(model(x[:1]).shape[1])
    counts = torch.zeros(classes, source_classes)
    for t, s in zip(y.tolist(), predicted.tolist(), strict=True):
        counts[t, s] += 1
    mapping = [-1] * classes
    for _ in range(classes):
        flat = int(counts.argmax())
        t, s = divmod(flat, source_classes)
        mapping[t] = s
        counts[t, :] = -1
        counts[:, s] = -1
    return mapping


def input_prompt(
    model: nn.Sequential,
    x: torch.Tensor,
    y: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    *,
    classes: int,
    mapping: Mapping = "frequency",
    steps: int = 300,
    lr: float = 0.05,
    seed: int = 0,
    bins: int = 15,
) -> ReprogramResult:
    """VP: learn an additive input prompt δ for the frozen model; target logits are mapped source logits."""
    import torch
    import torch.nn.functional as F

    from malot_sparse.core.mlp import linear_layers

    layers = linear_layers(model)
    width, source_classes = layers[0].in_features, layers[-1].out_features
    padded, padded_test = _pad(x, width), _pad(x_test, width)
    if classes > source_classes:
        raise ToolError(
            f"the target has {classes} classes, the source model only {source_classes}",
            hint="input prompting maps target classes onto source classes; use linear probing",
        )
    index = frequency_label_mapping(model, padded, y, classes) if mapping == "frequency" else list(range(classes))
    chosen = torch.tensor(index)
    frozen = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    torch.manual_seed(seed)
    delta = torch.zeros(width, requires_grad=True)
    optimizer = torch.optim.Adam([delta], lr=lr)
    try:
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(padded + delta)[:, chosen], y).backward()  # type: ignore[no-untyped-call]
            optimizer.step()
    finally:
        for p, flag in zip(model.parameters(), frozen, strict=True):
            p.requires_grad_(flag)
    with torch.no_grad():
        probs = F.softmax(model(padded_test + delta)[:, chosen], dim=1)
    return _score(probs, y_test, bins)


_PAPER = (
    "Reprogramming under constraints: Revisiting efficient and reliable transferability of lottery tickets "
    "(Misra et al., 2023)"
)


class ReprogramTicketInput(BaseModel):
    """Arguments of the ``reprogram_ticket`` tool."""

    source: str = Field(description="frozen source model: an MLP checkpoint (a ticket from lottery_ticket, or dense)")
    data: str = Field(description="target task data: .safetensors or .npz with x (n, features) and y (n,)")
    methods: list[Literal["linear_probe", "input_prompt"]] = Field(
        default=["linear_probe", "input_prompt"], min_length=1, description="adaptations to run"
    )
    mapping: Mapping = Field(default="frequency", description="label mapping of input prompting: frequency or first")
    steps: int = Field(default=300, gt=0)
    lr_probe: float = Field(default=0.01, gt=0)
    lr_prompt: float = Field(default=0.05, gt=0)
    bins: int = Field(default=15, ge=1, description="ECE bins")
    test_fraction: float = Field(default=0.3, gt=0, lt=1)
    seed: int = 0


class MethodScore(BaseModel):
    """Test accuracy and calibration of one adaptation."""

    accuracy: float
    ece: float


class ReprogramTicketOutput(BaseModel):
    """Result of the ``reprogram_ticket`` tool."""

    source_sparsity: float = Field(description="share of zero weights in the source's masked layers (0 = dense)")
    scores: dict[str, MethodScore]


@tool(
    name="reprogram_ticket",
    family="sparse",
    paper=_PAPER,
    tags=("sparse", "lottery-ticket", "transfer", "reprogramming", "calibration", "needs:labelled-target"),
)
def reprogram_ticket(args: ReprogramTicketInput) -> ReprogramTicketOutput:
    """Adapt a frozen dense or sparse (lottery-ticket) source model to a target task by linear probing and/or input
    prompting (model reprogramming); report test accuracy and expected calibration error of each."""
    from malot_sparse.core.mlp import load_mlp, load_xy, split

    model, masks, _ = load_mlp(args.source)
    x, y = load_xy(args.data)
    classes = int(y.max()) + 1
    if classes < 2:
        raise ToolError("the target data hold a single class", hint="give at least two classes")
    x_train, y_train, x_test, y_test = split(x, y, args.test_fraction, args.seed)
    scores: dict[str, MethodScore] = {}
    for method in args.methods:
        if method == "linear_probe":
            result = linear_probe(
                model,
                x_train,
                y_train,
                x_test,
                y_test,
                classes=classes,
                steps=args.steps,
                lr=args.lr_probe,
                seed=args.seed,
                bins=args.bins,
            )
        else:
            result = input_prompt(
                model,
                x_train,
                y_train,
                x_test,
                y_test,
                classes=classes,
                mapping=args.mapping,
                steps=args.steps,
                lr=args.lr_prompt,
                seed=args.seed,
                bins=args.bins,
            )
        scores[method] = MethodScore(accuracy=result.accuracy, ece=result.ece)
    zeros = sum(int((~m).sum()) for m in masks.values())
    total = sum(int(m.numel()) for m in masks.values())
    return ReprogramTicketOutput(source_sparsity=zeros / total if total else 0.0, scores=scores)
