"""LingoCL ("Exploring the role of language in class-incremental learning"): class names' language embeddings as a
frozen classifier, new classes appended as new rows.

A sentence model embeds each class name; the unit-length embeddings are the rows of the classifier ``W`` and are
never trained. The feature extractor ``f`` (ending in a projection to the language space) is trained with the
cosine-softmax ``p(c|x) ∝ exp(s · cos(f(x), W_c))``. When a task brings new classes their embeddings are appended,
so old classes' targets stay *exactly* what they were, and the old classes keep a semantically placed prototype
instead of a learnt row that new-task training biases. The method is the paper's; the sentence embeddings come from
sentence-transformers (default: the offline MiniLM malot's dense retrieval uses, :mod:`malot.retrieval.encoders`).
The class-incremental loop is plain torch (avalanche-lib pulls a torch newer than the 2.13 malot pins).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool

if TYPE_CHECKING:
    import torch
    from torch import nn

    from malot.retrieval.encoders import SentenceEncoder
    from malot_continual.core.data import LabelledData

__all__ = [
    "LingoInput",
    "LingoOutput",
    "LingoResult",
    "class_name_embeddings",
    "frozen_head",
    "lingo_head",
    "train_class_incremental",
]

_PAPER = "LingoCL: Exploring the Role of Language in Class-Incremental Learning (language-guided frozen classifier)"
HeadKind = Literal["language", "linear", "random"]


@functools.lru_cache(maxsize=2)
def _encoder(model: str | None) -> SentenceEncoder:
    """One loaded sentence encoder per model folder (loading MiniLM takes seconds)."""
    from malot.retrieval.encoders import SentenceEncoder

    return SentenceEncoder(model)


def class_name_embeddings(names: Sequence[str], model: str | None = None, *, template: str = "{}") -> torch.Tensor:
    """Unit-length sentence embeddings of ``template.format(name)`` for each class name (default model: MiniLM)."""
    import torch

    if not names:
        raise ToolError("no class names given", hint="give one name per class")
    if any(not n.strip() for n in names):
        raise ToolError("a class name is empty", hint="name every class")
    if len(set(names)) != len(names):
        raise ToolError("class names repeat; their language targets would coincide", hint="give distinct names")
    vectors = _encoder(model).encode([template.format(n) for n in names])
    return torch.from_numpy(vectors).float()


def frozen_head(existing: torch.Tensor | None, new_rows: torch.Tensor) -> torch.Tensor:
    """Append ``new_rows`` (unit-normalised) below ``existing``; the existing rows are returned unchanged."""
    import torch

    rows = torch.nn.functional.normalize(new_rows.float(), dim=1)
    if existing is None:
        return rows
    if existing.shape[1] != rows.shape[1]:
        raise ToolError(f"new class embeddings have dimension {rows.shape[1]}, the head {existing.shape[1]}")
    return torch.cat([existing, rows], dim=0)


def _extractor(in_dim: int, hidden: Sequence[int], out_dim: int) -> nn.Module:
    from torch import nn

    layers: list[nn.Module] = []
    width = in_dim
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


def _logits(
    extractor: nn.Module, weight: torch.Tensor | None, learnt: list[torch.nn.Parameter], scale: float, x: torch.Tensor
) -> torch.Tensor:
    """Cosine-softmax logits against the frozen rows, or plain logits of the learnt linear head."""
    import torch

    feats = extractor(x)
    if learnt:
        out: torch.Tensor = feats @ torch.cat(list(learnt), 0).T
        return out
    assert weight is not None
    frozen: torch.Tensor = scale * torch.nn.functional.normalize(feats, dim=1) @ weight.T
    return frozen


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float((logits.argmax(-1) == labels).float().mean())


@dataclass
class LingoResult:
    """``accuracy[i][j]``: accuracy on task ``j``'s classes (over all classes seen so far) after task ``i``."""

    accuracy: list[list[float]] = field(default_factory=list)
    head: torch.Tensor | None = None
    head_history: list[torch.Tensor] = field(default_factory=list)

    @property
    def final_mean(self) -> float:
        """Mean accuracy over all tasks after the last one."""
        return sum(self.accuracy[-1]) / len(self.accuracy[-1])


def train_class_incremental(
    tasks: Sequence[LabelledData],
    class_rows: Sequence[torch.Tensor],
    *,
    head: HeadKind = "language",
    hidden: Sequence[int] = (64,),
    epochs: int = 10,
    lr: float = 0.005,
    scale: float = 16.0,
    batch_size: int = 32,
    seed: int = 0,
    evaluation: Sequence[LabelledData] | None = None,
    rehearsal: int = 0,
) -> LingoResult:
    """Class-incremental learning without replay: task ``t`` brings classes with embeddings ``class_rows[t]``.

    Labels are global class indexes in order of appearance. ``head="language"`` uses the frozen language rows
    (LingoCL); ``"random"`` frozen random unit rows of the same shape (the ablation: frozen but not language);
    ``"linear"`` a learnt linear head grown by new rows each task (the usual fine-tuning baseline). LingoCL is a
    classifier that plugs into a class-incremental method; ``rehearsal`` (examples kept per finished task and mixed
    into every batch) is the replay method it is plugged into here (0: no replay).
    """
    import torch

    if len(tasks) != len(class_rows) or not tasks:
        raise ToolError(f"{len(tasks)} tasks but {len(class_rows)} class-embedding blocks", hint="one block per task")
    if head not in ("language", "linear", "random"):
        raise ToolError(f"unknown head {head!r}", hint="use language, linear or random")
    evals = evaluation if evaluation is not None else tasks
    dim = int(class_rows[0].shape[1])
    in_dim = tasks[0].dim
    offsets = [0]
    for rows in class_rows:
        offsets.append(offsets[-1] + int(rows.shape[0]))
    for t, data in enumerate(tasks):
        if data.dim != in_dim:
            raise ToolError(f"task {t} has {data.dim} features, task 0 has {in_dim}")
        if bool(((data.y < offsets[t]) | (data.y >= offsets[t + 1])).any()):
            raise ToolError(f"task {t}'s labels must be its own classes {offsets[t]}..{offsets[t + 1] - 1}")
    torch.manual_seed(seed)
    extractor = _extractor(in_dim, hidden, dim)
    g = torch.Generator().manual_seed(seed)
    result = LingoResult()
    memory: list[LabelledData] = []
    weight: torch.Tensor | None = None
    learnt: list[torch.nn.Parameter] = []
    for t, data in enumerate(tasks):
        rows = class_rows[t]
        if head == "random":
            rows = torch.randn(rows.shape, generator=torch.Generator().manual_seed(seed + 7 + t))
        if head == "linear":
            learnt.append(torch.nn.Parameter(0.01 * torch.randn(rows.shape, generator=g)))
        else:
            weight = frozen_head(weight, rows)
            result.head_history.append(weight.clone())
        params = list(extractor.parameters()) + learnt
        opt = torch.optim.Adam(params, lr=lr)

        for _ in range(epochs):
            order = torch.randperm(len(data), generator=g)
            for begin in range(0, len(data), batch_size):
                idx = order[begin : begin + batch_size]
                x, y = data.x[idx], data.y[idx]
                if memory:
                    pool_x = torch.cat([m.x for m in memory])
                    pool_y = torch.cat([m.y for m in memory])
                    pick = torch.randint(len(pool_y), (len(idx),), generator=g)
                    x, y = torch.cat([x, pool_x[pick]]), torch.cat([y, pool_y[pick]])
                loss = torch.nn.functional.cross_entropy(_logits(extractor, weight, learnt, scale, x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
        if rehearsal > 0:
            memory.append(data.subset(torch.randperm(len(data), generator=g)[:rehearsal]))
        with torch.no_grad():
            result.accuracy.append(
                [_accuracy(_logits(extractor, weight, learnt, scale, evals[j].x), evals[j].y) for j in range(t + 1)]
            )
    result.head = weight if head != "linear" else torch.cat([p.detach() for p in learnt], 0)
    return result


class LingoInput(BaseModel):
    """Arguments of the ``lingo_head`` tool."""

    class_names: list[list[str]] = Field(min_length=1, description="per task, the names of the classes it brings")
    tasks: list[str] = Field(min_length=1, description="per task, .npz data (labels: global class index in order)")
    eval_tasks: list[str] | None = Field(default=None, description="held-out data per task (default: the tasks)")
    encoder: str | None = Field(default=None, description="sentence-transformers folder (default: offline MiniLM)")
    template: str = Field(default="{}", description="text around each name, e.g. 'a photo of a {}'")
    head: HeadKind = Field(default="language", description="language (LingoCL), linear or random (baselines)")
    head_out: str | None = Field(default=None, description="write the classifier rows here (.npy)")
    hidden: list[int] = Field(default=[64])
    rehearsal: int = Field(default=20, ge=0, description="examples kept per finished task and replayed (0: none)")
    epochs: int = Field(default=10, gt=0)
    lr: float = Field(default=0.005, gt=0)
    scale: float = Field(default=16.0, gt=0, description="cosine-softmax scale s")
    seed: int = 0


class LingoOutput(BaseModel):
    """Result of the ``lingo_head`` tool."""

    accuracy: list[list[float]] = Field(
        description="row i, column j: accuracy on task j's classes after task i (over all classes)"
    )
    final_mean_accuracy: float
    n_classes: int
    head: str | None


@tool(
    name="lingo_head",
    family="continual",
    paper=_PAPER,
    heavy=True,
    tags=("continual", "class-incremental", "language", "embeddings", "frozen-classifier"),
)
def lingo_head(args: LingoInput) -> LingoOutput:
    """Class-incremental learning with a frozen classifier made of the class names' sentence embeddings (LingoCL).

    New classes append rows; old rows never change. Trains a feature extractor with cosine softmax, task by task.
    """
    import numpy as np

    from malot_continual.core.data import load_npz

    if len(args.class_names) != len(args.tasks):
        raise ToolError(f"{len(args.class_names)} name lists for {len(args.tasks)} tasks", hint="one list per task")
    names = [n for block in args.class_names for n in block]
    all_rows = class_name_embeddings(names, args.encoder, template=args.template)
    blocks, start = [], 0
    for block in args.class_names:
        if not block:
            raise ToolError("a task brings no classes", hint="every task needs at least one new class name")
        blocks.append(all_rows[start : start + len(block)])
        start += len(block)
    tasks = [load_npz(p) for p in args.tasks]
    evaluation = [load_npz(p) for p in args.eval_tasks] if args.eval_tasks is not None else None
    result = train_class_incremental(
        tasks,
        blocks,
        head=args.head,
        hidden=args.hidden,
        epochs=args.epochs,
        lr=args.lr,
        scale=args.scale,
        seed=args.seed,
        evaluation=evaluation,
        rehearsal=args.rehearsal,
    )
    written = None
    if args.head_out is not None and result.head is not None:
        Path(args.head_out).parent.mkdir(parents=True, exist_ok=True)
        np.save(args.head_out, result.head.numpy())
        written = args.head_out
    return LingoOutput(
        accuracy=result.accuracy, final_mean_accuracy=result.final_mean, n_classes=len(names), head=written
    )
