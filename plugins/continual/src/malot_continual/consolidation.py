"""Group-wise consolidation with per-task heads and rehearsal, after the lifelong deep-learning framework
("Toward a lifelong learning framework", Kudithipudi et al. / the consolidation family of methods, §"weight
consolidation": ``L = L_task + Σ_g b_g ‖w_g − w_g^old‖²``).

Parameters are split into *groups* by name prefix; each group ``g`` has a consolidation strength ``b_g``:
``b_g = ∞`` freezes the group (it is left out of the optimiser, so it stays bit-identical), ``b_g = 0`` leaves it
free (plain fine-tuning), anything between pulls it towards its value at the end of the previous task. Every task
gets its own output head, and a small rehearsal buffer of earlier tasks' examples is replayed with their own heads
during later tasks (the framework's "sleep" phase, interleaved here batch by batch). The framework is the paper's;
the optimiser and autograd are torch's. The task loop is written here, not on avalanche-lib, because every
avalanche release pulls a torch newer than the 2.13 malot pins.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool

if TYPE_CHECKING:
    import torch
    from torch import nn

    from malot_continual.core.data import LabelledData
    from malot_continual.core.nets import MultiHeadMLP

__all__ = [
    "ConsolidatedInput",
    "ConsolidatedOutput",
    "ConsolidationResult",
    "consolidated_train",
    "consolidated_train_tool",
    "consolidation_penalty",
    "group_strengths",
]

_PAPER = "A lifelong deep-learning framework: group-wise weight consolidation, task heads and rehearsal"


def group_strengths(model: nn.Module, strengths: Mapping[str, float], default: float = 0.0) -> dict[str, float]:
    """Each parameter's ``b``: the strength of the longest name prefix in ``strengths`` it starts with, else default."""
    for prefix, value in strengths.items():
        if math.isnan(value) or value < 0:
            raise ToolError(f"consolidation strength for {prefix!r} must be >= 0 (or inf), got {value}")
    names = [n for n, _ in model.named_parameters()]
    unused = [p for p in strengths if not any(n.startswith(p) for n in names)]
    if unused:
        raise ToolError(f"no parameter name starts with {unused}", hint=f"parameter names look like {names[:4]}")
    out = {}
    for name in names:
        matches = [p for p in strengths if name.startswith(p)]
        out[name] = strengths[max(matches, key=len)] if matches else default
    return out


def consolidation_penalty(
    model: nn.Module, anchor: Mapping[str, torch.Tensor], strengths: Mapping[str, float]
) -> torch.Tensor | None:
    """``Σ_g b_g ‖w_g − w_g^old‖²`` over parameters with a finite, positive ``b`` (``None`` when there are none)."""
    terms = [
        strengths[name] * ((param - anchor[name]) ** 2).sum()
        for name, param in model.named_parameters()
        if 0.0 < strengths[name] < math.inf and param.requires_grad
    ]
    if not terms:
        return None
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


@dataclass
class ConsolidationResult:
    """``accuracy[i][j]``: accuracy on task ``j``'s evaluation data after learning task ``i`` (``j <= i``)."""

    accuracy: list[list[float]] = field(default_factory=list)
    max_change: dict[str, float] = field(default_factory=dict)

    @property
    def forgetting(self) -> float:
        """Mean over old tasks of (best accuracy so far − final accuracy); 0 for one task."""
        if len(self.accuracy) < 2:
            return 0.0
        final = self.accuracy[-1]
        drops = [max(row[j] for row in self.accuracy[j:]) - final[j] for j in range(len(final) - 1)]
        return sum(drops) / len(drops)


def consolidated_train(
    model: MultiHeadMLP,
    tasks: Sequence[LabelledData],
    *,
    strengths: Mapping[str, float],
    default_strength: float = 0.0,
    rehearsal: int = 0,
    epochs: int = 10,
    lr: float = 0.01,
    batch_size: int = 32,
    seed: int = 0,
    evaluation: Sequence[LabelledData] | None = None,
    consolidate_from: int = 1,
) -> ConsolidationResult:
    """Learn ``tasks`` in order (task ``t`` on head ``t``) with group-wise consolidation and rehearsal.

    The anchor ``w^old`` is the model at the start of each task. ``rehearsal`` examples per finished task are kept
    (chosen at random) and one rehearsal batch of the same size is replayed with every new-task batch. With every
    ``b = 0`` and ``rehearsal = 0`` this is exactly sequential fine-tuning (same batches, same Adam steps).
    Consolidation (and freezing) applies from task ``consolidate_from`` on: 1 for a fresh model, whose first task
    must train every group; 0 for a model that already holds skills to keep.
    """
    import torch

    from malot_continual.core.mlp import accuracy

    if not tasks:
        raise ToolError("no tasks given", hint="give at least one task")
    if len(tasks) > len(model.heads):
        raise ToolError(f"{len(tasks)} tasks but the model has {len(model.heads)} heads")
    if evaluation is not None and len(evaluation) != len(tasks):
        raise ToolError(f"{len(evaluation)} evaluation sets for {len(tasks)} tasks", hint="give one per task")
    for t, data in enumerate(tasks):
        if data.dim != model.in_dim:
            raise ToolError(f"task {t} has {data.dim} features, the model takes {model.in_dim}")
        if int(data.y.max()) >= model.n_classes:
            raise ToolError(f"task {t} has label {int(data.y.max())}, the heads have {model.n_classes} classes")
    b = group_strengths(model, strengths, default_strength)
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    result = ConsolidationResult()
    buffer: list[tuple[int, LabelledData]] = []
    params = dict(model.named_parameters())
    evals = evaluation if evaluation is not None else tasks
    for t, data in enumerate(tasks):
        anchor = {n: p.detach().clone() for n, p in params.items()}
        frozen = {n for n, v in b.items() if v == math.inf} if t >= consolidate_from else set()
        trainable = [p for n, p in params.items() if n not in frozen]
        opt = torch.optim.Adam(trainable, lr=lr)
        g = torch.Generator().manual_seed(seed + t)
        replay = torch.Generator().manual_seed(seed + 1000 + t)
        for _ in range(epochs):
            order = torch.randperm(len(data), generator=g)
            for begin in range(0, len(data), batch_size):
                idx = order[begin : begin + batch_size]
                loss = torch.nn.functional.cross_entropy(model(data.x[idx], head=t), data.y[idx])
                if buffer:
                    old_task, old = buffer[int(torch.randint(len(buffer), (1,), generator=replay))]
                    pick = torch.randint(len(old), (min(batch_size, len(old)),), generator=replay)
                    loss = loss + torch.nn.functional.cross_entropy(model(old.x[pick], head=old_task), old.y[pick])
                penalty = consolidation_penalty(model, anchor, b) if t >= consolidate_from else None
                if penalty is not None:
                    loss = loss + penalty
                opt.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                for name in frozen:
                    params[name].grad = None
                opt.step()
        if rehearsal > 0:
            keep = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed + 2000 + t))[:rehearsal]
            buffer.append((t, data.subset(keep)))
        result.accuracy.append([accuracy(model, evals[j], head=j) for j in range(t + 1)])
    result.max_change = {n: float((p.detach() - start[n]).abs().max()) for n, p in params.items()}
    return result


class ConsolidatedInput(BaseModel):
    """Arguments of the ``consolidated_train`` tool."""

    tasks: list[str] = Field(
        min_length=1, description="task data in order: .npz files with x (rows × features) and y (labels)"
    )
    out: str = Field(description="where to write the trained model (.safetensors)")
    strengths: dict[str, float] = Field(
        default={"body": 1.0},
        description="parameter-name prefix -> b (0 = free, inf = frozen); e.g. body.0, heads. A new model's first "
        "task trains every group; a given model is consolidated from its first task on",
    )
    default_strength: float = Field(default=0.0, ge=0, description="b of parameters no prefix names")
    rehearsal: int = Field(default=20, ge=0, description="examples kept per finished task and replayed later")
    eval_tasks: list[str] | None = Field(default=None, description="held-out data per task (default: the tasks)")
    model: str | None = Field(default=None, description="start from this model file instead of a new one")
    hidden: list[int] = Field(default=[64, 64])
    n_classes: int = Field(default=10, gt=0)
    epochs: int = Field(default=10, gt=0)
    lr: float = Field(default=0.01, gt=0)
    seed: int = 0


class ConsolidatedOutput(BaseModel):
    """Result of the ``consolidated_train`` tool."""

    accuracy: list[list[float]] = Field(description="row i, column j: accuracy on task j after learning task i")
    final_mean_accuracy: float
    forgetting: float
    max_change: dict[str, float] = Field(description="largest absolute change of each parameter over the run")
    model: str


@tool(
    name="consolidated_train",
    family="continual",
    paper=_PAPER,
    tags=("continual", "lifelong", "consolidation", "rehearsal", "task-incremental"),
)
def consolidated_train_tool(args: ConsolidatedInput) -> ConsolidatedOutput:
    """Learn a sequence of tasks keeping old skills: group-wise consolidation b_g‖w−w_old‖², task heads, rehearsal.

    ``b = inf`` freezes a group after the first task, ``b = 0`` leaves it free (plain fine-tuning); writes the model.
    """
    import torch

    from malot_continual.core.data import load_npz
    from malot_continual.core.mlp import build_mlp, load_mlp, save_mlp
    from malot_continual.core.nets import MultiHeadMLP

    torch.manual_seed(args.seed)
    tasks = [load_npz(p) for p in args.tasks]
    evaluation = [load_npz(p) for p in args.eval_tasks] if args.eval_tasks is not None else None
    if args.model is not None:
        model = load_mlp(args.model)
    else:
        model = build_mlp(tasks[0].dim, args.hidden, args.n_classes, heads=len(tasks))
    assert isinstance(model, MultiHeadMLP)
    result = consolidated_train(
        model,
        tasks,
        strengths=args.strengths,
        default_strength=args.default_strength,
        rehearsal=args.rehearsal,
        epochs=args.epochs,
        lr=args.lr,
        seed=args.seed,
        evaluation=evaluation,
        consolidate_from=0 if args.model is not None else 1,
    )
    path = save_mlp(model, Path(args.out))
    return ConsolidatedOutput(
        accuracy=result.accuracy,
        final_mean_accuracy=sum(result.accuracy[-1]) / len(result.accuracy[-1]),
        forgetting=result.forgetting,
        max_change=result.max_change,
        model=str(path),
    )
