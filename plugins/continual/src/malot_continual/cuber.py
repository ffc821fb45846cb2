"""CUBER (Lin et al., NeurIPS 2022, "Beyond Not-Forgetting: Continual Learning with Backward Knowledge Transfer").

GPM freezes every old task's input subspace: a new task's layer gradient ``g`` is replaced by ``g − Σ_j P_j(g)``
with ``P_j(g) = g B_j B_jᵀ`` the projection onto old task ``j``'s basis. CUBER keeps part of that in-subspace
update for old tasks that the new task can *improve*. For each layer ``l`` and old task ``j`` it tests, once at
the start of the new task with the new task's gradient ``g``:

* **sufficient projection** (the trust region): ``‖P_j(g)‖ ≥ ε ‖g‖`` — the new task moves the layer substantially
  inside task ``j``'s subspace;
* **positive correlation**: ``⟨P_j(g), P_j(g_j)⟩ > 0`` with ``g_j`` the old task's gradient stored when it was
  learnt — a descent step for the new task is, to first order, a descent step for task ``j`` (``ΔL_j ≈ −α⟨g_j, g⟩``).

A flagged ``(l, j)`` keeps ``λ·P_j(g)`` instead of removing it (Eq. of the paper's update rule, ``λ`` its scale), so
learning the new task also modifies, and can improve, the old task's model: backward transfer without replay.
Nothing flagged gives exactly GPM's update. Ours: the whole algorithm, in torch; the paper's
``sahagobinda/GPM``-style bases come from :mod:`malot_continual.core.gpm`. The task loop is written here rather
than on avalanche-lib because every avalanche release pulls a torch newer than the 2.13 malot pins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_continual.core.gpm import new_basis, project_out

if TYPE_CHECKING:
    import torch

    from malot_continual.core.data import LabelledData
    from malot_continual.core.nets import MultiHeadMLP

__all__ = [
    "CuberInput",
    "CuberOutput",
    "GradientMemory",
    "cuber_flags",
    "cuber_project",
    "cuber_step",
    "learn_task",
]

_PAPER = "Beyond Not-Forgetting: Continual Learning with Backward Knowledge Transfer (Lin et al., NeurIPS 2022)"
_FORMAT = "malot-cuber-memory"


@dataclass
class GradientMemory:
    """Per body layer and per learnt task: the task's GPM basis ``[in, k]`` and its stored gradient ``[out, in]``."""

    bases: list[list[torch.Tensor]] = field(default_factory=list)
    grads: list[list[torch.Tensor]] = field(default_factory=list)

    @property
    def n_tasks(self) -> int:
        """How many tasks the memory holds."""
        return len(self.bases[0]) if self.bases else 0

    def save(self, path: str | Path) -> Path:
        """One safetensors file: ``layer{l}.task{j}.basis`` and ``.grad``."""
        from safetensors.torch import save_file

        tensors = {}
        for l_idx, (layer_bases, layer_grads) in enumerate(zip(self.bases, self.grads, strict=True)):
            for j, (b, g) in enumerate(zip(layer_bases, layer_grads, strict=True)):
                tensors[f"layer{l_idx}.task{j}.basis"] = b.contiguous()
                tensors[f"layer{l_idx}.task{j}.grad"] = g.contiguous()
        meta = {"format": _FORMAT, "layers": str(len(self.bases)), "tasks": str(self.n_tasks)}
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(out), metadata=meta)
        return out

    @classmethod
    def load(cls, path: str | Path) -> GradientMemory:
        """Read a memory written by :meth:`save`."""
        from safetensors import safe_open

        file = Path(path)
        with safe_open(str(file), framework="pt") as handle:
            meta = handle.metadata() or {}
            if meta.get("format") != _FORMAT:
                raise ToolError(f"{file} is not a CUBER memory", hint="start without memory; cuber_step writes one")
            layers, tasks = int(meta["layers"]), int(meta["tasks"])
            bases = [[handle.get_tensor(f"layer{l_}.task{j}.basis") for j in range(tasks)] for l_ in range(layers)]
            grads = [[handle.get_tensor(f"layer{l_}.task{j}.grad") for j in range(tasks)] for l_ in range(layers)]
        return cls(bases=bases, grads=grads)


def cuber_flags(
    grads: list[torch.Tensor], memory: GradientMemory, *, projection_threshold: float = 0.5
) -> list[list[bool]]:
    """``flags[l][j]``: does old task ``j`` pass both tests (sufficient projection, positive correlation) at ``l``."""
    if len(grads) != len(memory.bases):
        raise ToolError(f"got gradients for {len(grads)} layers, the memory has {len(memory.bases)}")
    flags: list[list[bool]] = []
    for g, layer_bases, layer_grads in zip(grads, memory.bases, memory.grads, strict=True):
        norm = float(g.norm())
        row = []
        for basis, old in zip(layer_bases, layer_grads, strict=True):
            if basis.shape[1] == 0 or norm == 0.0:
                row.append(False)
                continue
            inside = (g @ basis) @ basis.T
            old_inside = (old @ basis) @ basis.T
            sufficient = float(inside.norm()) >= projection_threshold * norm
            positive = float((inside * old_inside).sum()) > 0.0
            row.append(sufficient and positive)
        flags.append(row)
    return flags


def cuber_project(
    grads: list[torch.Tensor], memory: GradientMemory, flags: list[list[bool]] | None = None, *, scale: float = 1.0
) -> list[torch.Tensor]:
    """CUBER's layer gradients: remove every old task's in-subspace part except ``scale``× that of flagged tasks.

    With ``flags`` all false (or ``None``) this is exactly GPM's projection ``g − g M Mᵀ``.
    """
    out = []
    for l_idx, (g, layer_bases) in enumerate(zip(grads, memory.bases, strict=True)):
        if g.shape[1] != (layer_bases[0].shape[0] if layer_bases else g.shape[1]):
            raise ToolError(f"layer {l_idx}: gradient has {g.shape[1]} inputs, the memory basis a different size")
        new = g
        for j, basis in enumerate(layer_bases):
            keep = flags is not None and flags[l_idx][j]
            projected = project_out(new, basis)
            new = projected + scale * (new - projected) if keep else projected
        out.append(new)
    return out


def _body_grads(model: MultiHeadMLP, data: LabelledData, head: int) -> list[torch.Tensor]:
    import torch

    model.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(model(data.x, head=head), data.y)
    loss.backward()  # type: ignore[no-untyped-call]
    grads = [lin.weight.grad.detach().clone() for lin in model.body_linears()]  # type: ignore[union-attr]
    model.zero_grad(set_to_none=True)
    return grads


def learn_task(
    model: MultiHeadMLP,
    data: LabelledData,
    memory: GradientMemory,
    *,
    head: int,
    method: str = "cuber",
    epochs: int = 20,
    lr: float = 0.01,
    batch_size: int = 32,
    threshold: float = 0.97,
    projection_threshold: float = 0.5,
    scale: float = 1.0,
    seed: int = 0,
) -> list[list[bool]]:
    """Learn one task with CUBER (``method="cuber"``), GPM (``"gpm"``) or plain SGD (``"sgd"``); update ``memory``.

    Body gradients are projected every step; the task's head trains freely. Afterwards the task's GPM bases and its
    full-batch gradient join the memory. Returns the CUBER flags (all false for gpm/sgd).
    """
    import torch

    if method not in ("cuber", "gpm", "sgd"):
        raise ToolError(f"unknown method {method!r}", hint="use cuber, gpm or sgd")
    if not 0 <= head < len(model.heads):
        raise ToolError(f"head {head} does not exist; the model has {len(model.heads)} heads")
    linears = model.body_linears()
    if not memory.bases:
        memory.bases = [[] for _ in linears]
        memory.grads = [[] for _ in linears]
    if len(memory.bases) != len(linears):
        raise ToolError(f"the memory has {len(memory.bases)} layers, the model {len(linears)}")
    start_grads = _body_grads(model, data, head)
    flags = (
        cuber_flags(start_grads, memory, projection_threshold=projection_threshold)
        if method == "cuber"
        else [[False] * memory.n_tasks for _ in linears]
    )
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(epochs):
        order = torch.randperm(len(data), generator=g)
        for begin in range(0, len(data), batch_size):
            idx = order[begin : begin + batch_size]
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(data.x[idx], head=head), data.y[idx]).backward()  # type: ignore[no-untyped-call]
            if method != "sgd" and memory.n_tasks:
                grads = [lin.weight.grad for lin in linears]
                projected = cuber_project([gr for gr in grads if gr is not None], memory, flags, scale=scale)
                for lin, new in zip(linears, projected, strict=True):
                    lin.weight.grad = new
            opt.step()
    end_grads = _body_grads(model, data, head)
    with torch.no_grad():
        inputs = model.layer_inputs(data.x)
    for l_idx, rep in enumerate(inputs):
        memory.bases[l_idx].append(new_basis(rep, memory.bases[l_idx], threshold))
        memory.grads[l_idx].append(end_grads[l_idx])
    return flags


class CuberInput(BaseModel):
    """Arguments of the ``cuber_step`` tool: learn one more task of a task-incremental stream."""

    task: str = Field(description="the new task's data: .npz with x (rows × features) and y (one label per row)")
    model: str = Field(description="model file (.safetensors); created when it does not exist yet")
    memory: str = Field(description="CUBER memory file (.safetensors); created when it does not exist yet")
    method: str = Field(default="cuber", description="cuber, gpm (nothing flagged) or sgd (no projection)")
    hidden: list[int] = Field(default=[64, 64], description="body widths when a new model is created")
    n_classes: int = Field(default=10, gt=0, description="classes per head when a new model is created")
    max_tasks: int = Field(default=10, gt=0, description="number of task heads when a new model is created")
    epochs: int = Field(default=20, gt=0)
    lr: float = Field(default=0.01, gt=0)
    threshold: float = Field(default=0.97, gt=0, le=1, description="GPM energy threshold ε_th")
    projection_threshold: float = Field(default=0.5, gt=0, le=1, description="CUBER's sufficient-projection ε")
    scale: float = Field(default=1.0, ge=0, description="λ: how much of a flagged in-subspace update to keep")
    eval_tasks: list[str] = Field(default=[], description="earlier tasks' data, in order, to report accuracy on")
    seed: int = 0


class CuberOutput(BaseModel):
    """Result of the ``cuber_step`` tool."""

    task_index: int
    flags: list[list[bool]] = Field(
        description="per layer, per old task: whether it kept in-subspace update (backward transfer)"
    )
    accuracy_new: float
    accuracy_old: list[float]
    model: str
    memory: str


@tool(
    name="cuber_step",
    family="continual",
    paper=_PAPER,
    tags=("continual", "task-incremental", "gradient-projection", "backward-transfer"),
)
def cuber_step(args: CuberInput) -> CuberOutput:
    """Learn one new task with CUBER: GPM gradient projection that keeps updates helping correlated old tasks.

    Old tasks whose input subspace the new task's gradient projects onto strongly and positively are flagged per
    layer; their in-subspace update is kept (scaled by λ), every other old subspace is protected as in GPM. The
    model (one head per task) and the memory (bases and stored gradients) are files, so call it once per task.
    """
    import torch

    from malot_continual.core.data import load_npz
    from malot_continual.core.mlp import accuracy, build_mlp, load_mlp, save_mlp
    from malot_continual.core.nets import MultiHeadMLP

    torch.manual_seed(args.seed)
    data = load_npz(args.task)
    model_path, memory_path = Path(args.model), Path(args.memory)
    model = (
        load_mlp(model_path)
        if model_path.exists()
        else build_mlp(data.dim, args.hidden, args.n_classes, heads=args.max_tasks)
    )
    assert isinstance(model, MultiHeadMLP)
    if model.in_dim != data.dim:
        raise ToolError(
            f"the task has {data.dim} features, the model takes {model.in_dim}", hint="use one feature space"
        )
    if int(data.y.max()) >= model.n_classes:
        raise ToolError(f"labels go up to {int(data.y.max())}, the heads have {model.n_classes} classes")
    memory = GradientMemory.load(memory_path) if memory_path.exists() else GradientMemory()
    head = memory.n_tasks
    if head >= len(model.heads):
        raise ToolError(f"the model has {len(model.heads)} task heads, all used", hint="create it with more max_tasks")
    if len(args.eval_tasks) > head:
        raise ToolError(f"{len(args.eval_tasks)} eval tasks given, only {head} were learnt before")
    flags = learn_task(
        model,
        data,
        memory,
        head=head,
        method=args.method,
        epochs=args.epochs,
        lr=args.lr,
        threshold=args.threshold,
        projection_threshold=args.projection_threshold,
        scale=args.scale,
        seed=args.seed,
    )
    save_mlp(model, model_path)
    memory.save(memory_path)
    old = [accuracy(model, load_npz(p), head=j) for j, p in enumerate(args.eval_tasks)]
    return CuberOutput(
        task_index=head,
        flags=flags,
        accuracy_new=accuracy(model, data, head=head),
        accuracy_old=old,
        model=str(model_path),
        memory=str(memory_path),
    )
