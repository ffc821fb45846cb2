"""NEVIS'22 (Bornschein et al., 2023): a task-stream runner that measures error against cumulative compute.

NEVIS'22 evaluates a learner on a long stream of classification tasks *in order*: on each task the learner may use
everything it learnt before, picks its hyper-parameters on the task's validation split, and is scored by its test
error; every FLOP it spends — on all hyper-parameter trials, training and validation — is added to a cumulative
compute count. The headline is the mean test error over the stream against the total compute. This module is the
runner and the learner API (:class:`Learner`), with the paper's baseline learners on a small MLP:

* ``independent``: a fresh model per task (no transfer);
* ``finetune``: start every task from the previous task's selected model (new head; the paper's strong baseline);
* ``frozen``: learn the body on the first task, then only train a new head per task (linear probe; cheap).

FLOPs are counted analytically: a dense layer costs ``2·in·out`` per example forward, training costs forward plus
twice that backward for layers that train (forward only for frozen ones). The runner, learners and accounting are
ours after the paper; torch does the training. Plain torch rather than avalanche-lib, whose releases pull a torch
newer than the 2.13 malot pins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool

if TYPE_CHECKING:
    import torch

    from malot_continual.core.data import LabelledData
    from malot_continual.core.nets import MultiHeadMLP

__all__ = [
    "ComputeMeter",
    "Learner",
    "MlpLearner",
    "RunStreamInput",
    "RunStreamOutput",
    "StreamResult",
    "StreamTask",
    "run_stream",
    "run_stream_tool",
    "training_flops",
]

_PAPER = "NEVIS'22: A Stream of 100 Tasks Sampled from 30 Years of Computer Vision Research (Bornschein et al., 2023)"
LearnerKind = Literal["independent", "finetune", "frozen"]


@dataclass
class StreamTask:
    """One task of the stream: train, validation and test splits (labels 0..n_classes-1)."""

    name: str
    train: LabelledData
    valid: LabelledData
    test: LabelledData

    @property
    def n_classes(self) -> int:
        """Number of classes (largest label + 1 over all splits)."""
        return 1 + max(int(s.y.max()) for s in (self.train, self.valid, self.test))


@dataclass
class ComputeMeter:
    """Cumulative floating-point operations spent by a learner."""

    flops: float = 0.0

    def add(self, flops: float) -> None:
        """Count ``flops`` more operations."""
        self.flops += flops


def forward_flops(model: MultiHeadMLP, *, trainable_only: bool = False) -> float:
    """``Σ 2·in·out`` over the model's body linear layers and one head (per example, forward)."""
    body = model.body_linears()
    layers = [*body, model.head_linear(0)]
    if trainable_only:
        layers = [m for m in layers if m.weight.requires_grad]
    return float(sum(2 * m.in_features * m.out_features for m in layers))


def training_flops(model: MultiHeadMLP, examples: int) -> float:
    """Forward on every layer, plus backward (2× forward) on the layers that train, for ``examples`` examples."""
    return examples * (forward_flops(model) + 2.0 * forward_flops(model, trainable_only=True))


class Learner(Protocol):
    """The NEVIS learner API: learn one task (counting compute on ``meter``) and return test predictions."""

    def learn(self, task: StreamTask, meter: ComputeMeter) -> torch.Tensor:
        """Learn ``task`` (choosing hyper-parameters on its validation split); predict its test inputs."""
        ...


@dataclass
class MlpLearner:
    """The paper's baseline learners on a small MLP, with a per-task learning-rate search on the validation split."""

    kind: LearnerKind = "finetune"
    hidden: Sequence[int] = (64,)
    epochs: int = 10
    learning_rates: Sequence[float] = (0.003, 0.01)
    batch_size: int = 32
    seed: int = 0
    _previous: MultiHeadMLP | None = field(default=None, repr=False)
    _tasks_seen: int = 0

    def _start(self, task: StreamTask) -> MultiHeadMLP:
        import copy

        import torch

        from malot_continual.core.mlp import build_mlp
        from malot_continual.core.nets import MultiHeadMLP

        torch.manual_seed(self.seed + self._tasks_seen)
        model = build_mlp(task.train.dim, self.hidden, task.n_classes)
        assert isinstance(model, MultiHeadMLP)
        if self.kind != "independent" and self._previous is not None:
            if self._previous.in_dim != task.train.dim:
                raise ToolError(f"task {task.name} has {task.train.dim} features, the previous {self._previous.in_dim}")
            model.body.load_state_dict(copy.deepcopy(self._previous.body.state_dict()))
            if self.kind == "frozen":
                for p in model.body.parameters():
                    p.requires_grad_(False)
        return model

    def learn(self, task: StreamTask, meter: ComputeMeter) -> torch.Tensor:
        """Try every learning rate, keep the one with the lowest validation error, predict the test split."""
        from malot_continual.core.mlp import predict, train_epochs

        best: tuple[float, MultiHeadMLP] | None = None
        for lr in self.learning_rates:
            model = self._start(task)
            seen = train_epochs(
                model, task.train, epochs=self.epochs, lr=lr, batch_size=self.batch_size, seed=self.seed
            )
            meter.add(training_flops(model, seen))
            meter.add(forward_flops(model) * len(task.valid))
            error = float((predict(model, task.valid.x) != task.valid.y).float().mean())
            if best is None or error < best[0]:
                best = (error, model)
        assert best is not None
        self._previous = best[1]
        self._tasks_seen += 1
        meter.add(forward_flops(best[1]) * len(task.test))
        return predict(best[1], task.test.x)


@dataclass
class StreamResult:
    """Per task: test error and cumulative compute after it; the stream's mean error and total compute."""

    names: list[str] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)
    cumulative_flops: list[float] = field(default_factory=list)

    @property
    def mean_error(self) -> float:
        """Mean test error over the stream."""
        return sum(self.errors) / len(self.errors)


def run_stream(stream: Sequence[StreamTask], learner: Learner) -> StreamResult:
    """Feed ``stream`` to ``learner`` in order; record each task's test error and the cumulative compute."""
    if not stream:
        raise ToolError("the stream is empty", hint="give at least one task")
    meter = ComputeMeter()
    result = StreamResult()
    for task in stream:
        predictions = learner.learn(task, meter)
        if predictions.shape != task.test.y.shape:
            raise ToolError(f"learner returned {tuple(predictions.shape)} predictions for {len(task.test)} test rows")
        result.names.append(task.name)
        result.errors.append(float((predictions != task.test.y).float().mean()))
        result.cumulative_flops.append(meter.flops)
    return result


class StreamTaskFiles(BaseModel):
    """One task of the stream as three .npz files."""

    name: str
    train: str
    valid: str
    test: str


class RunStreamInput(BaseModel):
    """Arguments of the ``run_stream`` tool."""

    stream: list[StreamTaskFiles] = Field(min_length=1, description="tasks in stream order")
    learner: LearnerKind = Field(default="finetune", description="independent, finetune or frozen")
    hidden: list[int] = Field(default=[64])
    epochs: int = Field(default=10, gt=0)
    learning_rates: list[float] = Field(default=[0.003, 0.01], min_length=1, description="searched on validation")
    seed: int = 0


class RunStreamOutput(BaseModel):
    """Result of the ``run_stream`` tool."""

    names: list[str]
    errors: list[float]
    cumulative_flops: list[float]
    mean_error: float
    total_flops: float


@tool(
    name="run_stream",
    family="continual",
    paper=_PAPER,
    tags=("continual", "task-stream", "transfer", "compute", "benchmark"),
)
def run_stream_tool(args: RunStreamInput) -> RunStreamOutput:
    """Run a NEVIS'22-style task stream: per-task validation model selection, test error vs cumulative FLOPs."""
    from malot_continual.core.data import load_npz

    if any(lr <= 0 for lr in args.learning_rates):
        raise ToolError("learning rates must be positive")
    stream = [StreamTask(t.name, load_npz(t.train), load_npz(t.valid), load_npz(t.test)) for t in args.stream]
    learner = MlpLearner(
        kind=args.learner, hidden=args.hidden, epochs=args.epochs, learning_rates=args.learning_rates, seed=args.seed
    )
    result = run_stream(stream, learner)
    return RunStreamOutput(
        names=result.names,
        errors=result.errors,
        cumulative_flops=result.cumulative_flops,
        mean_error=result.mean_error,
        total_flops=result.cumulative_flops[-1],
    )
