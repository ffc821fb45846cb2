"""The wholistic open-world learning loop (the "Wholistic continual learning" survey's open-world cycle):
stream → train → open-set rejection → active query → update.

A classifier trained on the known classes meets a stream of unlabelled batches that also hold examples of classes
it has never seen. Each batch goes through the cycle:

1. **open-set rejection**: every example gets a novelty score — the negative energy score ``−T·logsumexp(f(x)/T)``
   (Liu et al., 2020; default) or ``1 − max softmax`` — and is rejected as unknown when the score exceeds the
   threshold that accepts ``tpr`` (default 95 %) of a held-out set of known-class examples;
2. **active query**: up to ``budget`` examples are sent to the oracle (the batch's hidden labels) — the most novel
   rejected ones (``query="novel"``), or a random sample of the batch (``query="random"``, the baseline);
3. **update**: answered examples join the labelled pool (a new label becomes a new class: the head grows), and the
   model is fine-tuned on the pool.

Per batch the loop records the novelty AUROC (unknown vs known classes, from the hidden labels), how many labels it
spent (never more than ``budget``), and the accuracy on a closed test set of every class. The loop is ours, after
the survey; AUROC is scikit-learn's. It is plain torch rather than avalanche-lib, whose releases pull a torch newer
than the 2.13 malot pins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool

if TYPE_CHECKING:
    import torch

    from malot_continual.core.data import LabelledData
    from malot_continual.core.nets import MultiHeadMLP

__all__ = [
    "OpenWorldInput",
    "OpenWorldOutput",
    "OpenWorldResult",
    "novelty_scores",
    "open_world_loop",
    "open_world_tool",
    "rejection_threshold",
]

_PAPER = "Wholistic open-world continual learning: stream, train, open-set rejection, active query, update (survey)"
Score = Literal["energy", "msp"]
Query = Literal["novel", "random"]


def novelty_scores(logits: torch.Tensor, kind: Score = "energy", temperature: float = 1.0) -> torch.Tensor:
    """Higher = more likely unknown: ``−T·logsumexp(z/T)`` (energy) or ``1 − max softmax`` (msp)."""
    import torch

    if kind == "energy":
        out: torch.Tensor = -temperature * torch.logsumexp(logits / temperature, dim=-1)
        return out
    if kind == "msp":
        msp: torch.Tensor = 1.0 - torch.softmax(logits, -1).max(-1).values
        return msp
    raise ToolError(f"unknown novelty score {kind!r}", hint="use energy or msp")


def rejection_threshold(known_scores: torch.Tensor, tpr: float) -> float:
    """The score below which a fraction ``tpr`` of known-class examples fall (they are accepted)."""
    import torch

    if not 0.0 < tpr < 1.0:
        raise ToolError(f"tpr must be strictly between 0 and 1, got {tpr}")
    if known_scores.numel() == 0:
        raise ToolError("no held-out known examples to set the rejection threshold")
    return float(torch.quantile(known_scores.double(), tpr))


@dataclass
class OpenWorldResult:
    """Per stream batch: novelty AUROC, rejections, labels spent and closed-set test accuracy; the class map."""

    auroc: list[float | None] = field(default_factory=list)
    rejected: list[int] = field(default_factory=list)
    queried: list[int] = field(default_factory=list)
    new_classes_found: list[int] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    classes: list[int] = field(default_factory=list)

    @property
    def labels_used(self) -> int:
        """Total oracle labels spent."""
        return sum(self.queried)


def _fit(
    model: MultiHeadMLP, x: torch.Tensor, y: torch.Tensor, n_known: int, epochs: int, lr: float, seed: int
) -> None:
    import torch

    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=g)
        for begin in range(0, len(y), 32):
            idx = order[begin : begin + 32]
            loss = torch.nn.functional.cross_entropy(model(x[idx])[:, :n_known], y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()


def open_world_loop(
    initial: LabelledData,
    stream: Sequence[LabelledData],
    *,
    budget: int,
    score: Score = "energy",
    query: Query = "novel",
    tpr: float = 0.95,
    update: bool = True,
    max_classes: int = 32,
    hidden: Sequence[int] = (64,),
    epochs: int = 20,
    lr: float = 0.005,
    seed: int = 0,
    test: LabelledData | None = None,
) -> OpenWorldResult:
    """Run the open-world cycle over ``stream`` (labels hidden from the learner; only queried ones are revealed).

    ``initial`` holds the known classes' labelled data (a fifth is held out to set the rejection threshold).
    ``budget`` is the number of oracle labels per batch. ``update=False`` keeps the initial model (the static
    baseline). Original labels can be any non-negative integers; classes are numbered in order of discovery.
    """
    import torch

    from malot_continual.core.mlp import build_mlp
    from malot_continual.core.nets import MultiHeadMLP

    if budget < 0:
        raise ToolError(f"budget must be >= 0, got {budget}")
    if query not in ("novel", "random"):
        raise ToolError(f"unknown query strategy {query!r}", hint="use novel or random")
    for i, batch in enumerate(stream):
        if batch.dim != initial.dim:
            raise ToolError(f"stream batch {i} has {batch.dim} features, the initial data {initial.dim}")
    classes = sorted({int(c) for c in initial.y.tolist()})
    if len(classes) < 2:
        raise ToolError("the initial data must hold at least two known classes")
    index = {c: i for i, c in enumerate(classes)}
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(initial), generator=g)
    n_val = max(1, len(initial) // 5)
    val_x = initial.x[order[:n_val]]
    pool_x = initial.x[order[n_val:]]
    pool_y = torch.tensor([index[int(c)] for c in initial.y[order[n_val:]].tolist()], dtype=torch.long)
    torch.manual_seed(seed)
    model = build_mlp(initial.dim, hidden, max_classes)
    assert isinstance(model, MultiHeadMLP)
    _fit(model, pool_x, pool_y, len(classes), epochs, lr, seed)
    result = OpenWorldResult()
    for step, batch in enumerate(stream):
        with torch.no_grad():
            known = len(classes)
            threshold = rejection_threshold(novelty_scores(model(val_x)[:, :known], score), tpr)
            scores = novelty_scores(model(batch.x)[:, :known], score)
        rejected = scores > threshold
        is_new = torch.tensor([int(c) not in index for c in batch.y.tolist()])
        result.auroc.append(_auroc(is_new, scores))
        result.rejected.append(int(rejected.sum()))
        if query == "novel":
            candidates = rejected.nonzero().squeeze(1)
            picked = candidates[scores[candidates].argsort(descending=True)[:budget]]
        else:
            picked = torch.randperm(len(batch), generator=g)[:budget]
        found = 0
        labels = []
        for i in picked.tolist():
            label = int(batch.y[i])
            if label not in index:
                if len(classes) >= max_classes:
                    raise ToolError(f"more than {max_classes} classes appeared", hint="raise max_classes")
                index[label] = len(classes)
                classes.append(label)
                found += 1
            labels.append(index[label])
        result.queried.append(len(labels))
        result.new_classes_found.append(found)
        if labels:
            pool_x = torch.cat([pool_x, batch.x[picked]])
            pool_y = torch.cat([pool_y, torch.tensor(labels, dtype=torch.long)])
        if update and labels:
            _fit(model, pool_x, pool_y, len(classes), epochs, lr, seed + 1 + step)
        if test is not None:
            result.test_accuracy.append(_closed_accuracy(model, test, index, len(classes)))
    result.classes = classes
    return result


def _auroc(is_new: torch.Tensor, scores: torch.Tensor) -> float | None:
    from sklearn.metrics import roc_auc_score

    if bool(is_new.all()) or not bool(is_new.any()):
        return None
    return float(roc_auc_score(is_new.numpy(), scores.numpy()))


def _closed_accuracy(model: MultiHeadMLP, test: LabelledData, index: dict[int, int], known: int) -> float:
    """Accuracy over every test example; classes not discovered yet count as errors."""
    import torch

    with torch.no_grad():
        pred = model(test.x)[:, :known].argmax(-1)
    truth = torch.tensor([index.get(int(c), -1) for c in test.y.tolist()])
    return float((pred == truth).float().mean())


class OpenWorldInput(BaseModel):
    """Arguments of the ``open_world_loop`` tool."""

    initial: str = Field(description="labelled data of the known classes (.npz with x, y)")
    stream: list[str] = Field(min_length=1, description="stream batches (.npz); y is the oracle, shown only if queried")
    budget: int = Field(ge=0, description="oracle labels per batch")
    test: str | None = Field(default=None, description="closed test set of every class, for accuracy per batch")
    score: Score = Field(default="energy", description="novelty score: energy or msp (max softmax)")
    query: Query = Field(default="novel", description="novel (most novel rejected) or random (baseline)")
    tpr: float = Field(default=0.95, gt=0, lt=1, description="share of known held-out examples accepted")
    update: bool = Field(default=True, description="fine-tune on the labelled pool after each batch")
    max_classes: int = Field(default=32, gt=1)
    hidden: list[int] = Field(default=[64])
    epochs: int = Field(default=20, gt=0)
    lr: float = Field(default=0.005, gt=0)
    seed: int = 0


class OpenWorldOutput(BaseModel):
    """Result of the ``open_world_loop`` tool."""

    auroc: list[float | None] = Field(description="novelty AUROC per batch (None when a batch has no new classes)")
    rejected: list[int]
    queried: list[int]
    labels_used: int
    new_classes_found: list[int]
    test_accuracy: list[float]
    classes: list[int] = Field(description="original labels of the known classes, in order of discovery")


@tool(
    name="open_world_loop",
    family="continual",
    paper=_PAPER,
    tags=("continual", "open-world", "open-set", "novelty-detection", "active-learning", "unseen"),
)
def open_world_tool(args: OpenWorldInput) -> OpenWorldOutput:
    """Run the open-world loop over a stream: reject unknowns (energy score), query labels within a budget, update.

    Reports per batch the novelty AUROC, rejections, labels spent (at most the budget) and new classes found.
    """
    from malot_continual.core.data import load_npz

    result = open_world_loop(
        load_npz(args.initial),
        [load_npz(p) for p in args.stream],
        budget=args.budget,
        score=args.score,
        query=args.query,
        tpr=args.tpr,
        update=args.update,
        max_classes=args.max_classes,
        hidden=args.hidden,
        epochs=args.epochs,
        lr=args.lr,
        seed=args.seed,
        test=load_npz(args.test) if args.test is not None else None,
    )
    return OpenWorldOutput(
        auroc=result.auroc,
        rejected=result.rejected,
        queried=result.queried,
        labels_used=result.labels_used,
        new_classes_found=result.new_classes_found,
        test_accuracy=result.test_accuracy,
        classes=result.classes,
    )
