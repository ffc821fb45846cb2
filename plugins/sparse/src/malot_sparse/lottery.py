"""The Lottery Ticket Hypothesis: iterative magnitude pruning (IMP) with rewinding.

Frankle & Carbin (ICLR 2019), with the rewinding of Frankle et al. ("Linear Mode Connectivity and the Lottery
Ticket Hypothesis", ICML 2020): train from ``θ₀`` for ``k`` steps to ``θ_k``; then, for every round, train to the
end, prune the fraction ``p`` of the *remaining* weights with the smallest magnitude (globally over all prunable
layers), and rewind the survivors to ``θ_k`` (``k = 0`` is the original reset to ``θ₀``). After ``r`` rounds the
sparsity is ``1 − (1 − p)^r`` (up to the rounding of ``p·remaining`` to whole weights each round) and every
surviving weight equals its value in ``θ_k``; the *ticket* is that mask with ``θ_k``, trained once more.

The paper's part: the round structure, the global magnitude criterion, rewinding. The library's part:
``torch.nn.utils.prune`` keeps the masks (``global_unstructured`` with ``L1Unstructured`` prunes a fraction of the
still-unpruned entries, which is exactly IMP's per-round rate) and applies them in the forward pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "ImpResult",
    "LotteryTicketInput",
    "LotteryTicketOutput",
    "expected_remaining",
    "imp",
    "lottery_ticket",
    "prunable_weights",
]

TrainFn = Callable[["nn.Module", int, int], None]
"""``train(model, steps, seed)``: trains ``model`` in place (pruned entries stay zero through the prune hooks)."""


def prunable_weights(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """``(module, "weight")`` for every linear and convolution layer: what IMP prunes (biases stay dense)."""
    from torch import nn

    return [(m, "weight") for m in model.modules() if isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d)]


def expected_remaining(total: int, p: float, rounds: int) -> int:
    """Surviving weights after ``rounds`` IMP rounds: each round removes ``round(p · remaining)`` (torch's rule)."""
    remaining = total
    for _ in range(rounds):
        remaining -= round(p * remaining)
    return remaining


@dataclass
class ImpResult:
    """What :func:`imp` found: per-parameter masks, the rewound ticket ``θ_k ⊙ m``, and per-round figures."""

    masks: dict[str, torch.Tensor]
    rewound: dict[str, torch.Tensor]
    rewind_point: dict[str, torch.Tensor]
    sparsity: list[float] = field(default_factory=list)

    @property
    def final_sparsity(self) -> float:
        """Share of pruned prunable weights after the last round."""
        return self.sparsity[-1] if self.sparsity else 0.0


def imp(
    model: nn.Module,
    train: TrainFn,
    *,
    rounds: int,
    p: float,
    steps: int,
    rewind_step: int = 0,
    seed: int = 0,
    on_round: Callable[[int, nn.Module], None] | None = None,
) -> ImpResult:
    """Iterative magnitude pruning with rewinding to step ``rewind_step``; ``model`` ends as the rewound ticket.

    Each round trains ``steps − rewind_step`` steps from ``θ_k`` (``train`` is called with the prune hooks in place),
    prunes ``p`` of the remaining prunable weights by global magnitude, and rewinds. ``on_round(r, model)`` sees the
    trained model of round ``r`` before it is pruned. On return the model holds ``θ_k ⊙ m`` with no prune hooks.
    """
    import torch
    from torch.nn.utils import prune

    if rounds < 0:
        raise ToolError(f"rounds must be >= 0, got {rounds}")
    if not 0.0 < p < 1.0:
        raise ToolError(f"the per-round pruning fraction p must be in (0, 1), got {p}")
    if not 0 <= rewind_step <= steps:
        raise ToolError(f"rewind_step={rewind_step} must lie between 0 and steps={steps}")
    targets = prunable_weights(model)
    if not targets:
        raise ToolError("the model has no linear or convolution layer to prune")
    names = {id(m): n for n, m in model.named_modules()}
    keys = [f"{names[id(m)]}.{attr}" if names[id(m)] else attr for m, attr in targets]
    if rewind_step:
        train(model, rewind_step, seed)
    rewind_point = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for module, attr in targets:
        prune.identity(module, attr)  # type: ignore[no-untyped-call]  # mask of ones: the hooks are in place from the first round on
    total = sum(int(getattr(m, attr).numel()) for m, attr in targets)
    sparsity: list[float] = []

    def rewind() -> None:
        with torch.no_grad():
            for (module, attr), key in zip(targets, keys, strict=True):
                getattr(module, f"{attr}_orig").copy_(rewind_point[key])
            for name, tensor in model.state_dict().items():
                if name in rewind_point and not name.endswith(("_orig", "_mask")):
                    tensor.copy_(rewind_point[name])

    try:
        for round_index in range(rounds):
            train(model, steps - rewind_step, seed + round_index + 1)
            if on_round is not None:
                on_round(round_index, model)
            prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=p)
            rewind()
            kept = sum(int(getattr(m, f"{attr}_mask").sum()) for m, attr in targets)
            sparsity.append(1.0 - kept / total)
        masks = {
            key: getattr(m, f"{attr}_mask").detach().bool().clone()
            for (m, attr), key in zip(targets, keys, strict=True)
        }
    finally:
        for module, attr in targets:
            prune.remove(module, attr)  # type: ignore[no-untyped-call]
    rewound = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return ImpResult(masks=masks, rewound=rewound, rewind_point=rewind_point, sparsity=sparsity)


_PAPER = (
    "The Lottery Ticket Hypothesis (Frankle & Carbin, ICLR 2019); rewinding: Linear Mode Connectivity and the "
    "Lottery Ticket Hypothesis (Frankle et al., ICML 2020)"
)


class LotteryTicketInput(BaseModel):
    """Arguments of the ``lottery_ticket`` tool."""

    data: str = Field(description="classification data: .safetensors or .npz with x (n, features) and y (n,)")
    out: str = Field(description="where to write the trained ticket (.safetensors MLP checkpoint with masks)")
    widths: list[int] = Field(default=[128, 64], min_length=1, description="hidden widths of the MLP")
    rounds: int = Field(default=3, ge=1, le=30, description="IMP rounds r")
    prune_fraction: float = Field(default=0.5, gt=0, lt=1, description="p, the share of remaining weights pruned")
    steps: int = Field(default=300, gt=0, description="training steps per round")
    rewind_step: int = Field(default=0, ge=0, description="k: rewind survivors to θ_k (0 = the original init θ₀)")
    lr: float = Field(default=1e-3, gt=0)
    batch_size: int = Field(default=128, gt=0)
    test_fraction: float = Field(default=0.2, gt=0, lt=1)
    baseline: Literal["random_reinit", "none"] = Field(
        default="random_reinit", description="also train the same mask from a fresh random init (the paper's control)"
    )
    seed: int = 0


class LotteryTicketOutput(BaseModel):
    """Result of the ``lottery_ticket`` tool."""

    ticket: str = Field(description="trained ticket checkpoint (weights and masks)")
    init: str = Field(description="the rewound ticket θ_k ⊙ m, untrained")
    sparsity_per_round: list[float]
    expected_sparsity: float = Field(description="1 − (1 − p)^r")
    dense_test_accuracy: float
    ticket_test_accuracy: float
    random_reinit_test_accuracy: float | None


@tool(
    name="lottery_ticket",
    family="sparse",
    paper=_PAPER,
    tags=("sparse", "pruning", "lottery-ticket", "compression", "supervised", "needs:labelled-data"),
    heavy=True,
)
def lottery_ticket(args: LotteryTicketInput) -> LotteryTicketOutput:
    """Lottery tickets by iterative magnitude pruning with rewinding, on an MLP trained on the given data.

    Trains, prunes p of the remaining weights by global magnitude, rewinds the survivors to θ_k and repeats for r
    rounds (sparsity 1 − (1 − p)^r), then trains the ticket and compares it with the dense network and with the same
    mask from a random re-initialisation. Writes the trained ticket and its rewound initialisation.
    """
    import torch

    from malot_sparse.core.mlp import accuracy, build_mlp, load_xy, save_mlp, split, train_classifier

    if args.rewind_step > args.steps:
        raise ToolError(f"rewind_step={args.rewind_step} is past the {args.steps} training steps of a round")
    x, y = load_xy(args.data)
    classes = int(y.max()) + 1
    if classes < 2:
        raise ToolError("the data hold a single class", hint="give at least two classes")
    x_train, y_train, x_test, y_test = split(x, y, args.test_fraction, args.seed)
    torch.manual_seed(args.seed)
    model = build_mlp(x.shape[1], args.widths, classes)
    dense_accuracy: list[float] = []

    def train(net: nn.Module, steps: int, seed: int) -> None:
        train_classifier(net, x_train, y_train, steps=steps, lr=args.lr, batch_size=args.batch_size, seed=seed)

    def record(round_index: int, net: nn.Module) -> None:
        if round_index == 0:
            dense_accuracy.append(accuracy(net, x_test, y_test))

    result = imp(
        model,
        train,
        rounds=args.rounds,
        p=args.prune_fraction,
        steps=args.steps,
        rewind_step=args.rewind_step,
        seed=args.seed,
        on_round=record,
    )
    out = Path(args.out)
    init_path = out.with_name(out.stem + ".init.safetensors")
    meta = {"sparsity": result.final_sparsity, "rounds": args.rounds, "p": args.prune_fraction, "k": args.rewind_step}
    save_mlp(model, init_path, masks=result.masks, extra=meta)
    steps = args.steps - args.rewind_step
    train_classifier(
        model, x_train, y_train, steps=steps, lr=args.lr, batch_size=args.batch_size, seed=args.seed, masks=result.masks
    )
    ticket_accuracy = accuracy(model, x_test, y_test)
    save_mlp(model, out, masks=result.masks, extra=meta)
    reinit_accuracy = None
    if args.baseline == "random_reinit":
        torch.manual_seed(args.seed + 10_000)
        control = build_mlp(x.shape[1], args.widths, classes)
        with torch.no_grad():
            for name, param in control.named_parameters():
                if name in result.masks:
                    param.mul_(result.masks[name])
        train_classifier(
            control,
            x_train,
            y_train,
            steps=steps,
            lr=args.lr,
            batch_size=args.batch_size,
            seed=args.seed,
            masks=result.masks,
        )
        reinit_accuracy = accuracy(control, x_test, y_test)
    return LotteryTicketOutput(
        ticket=str(out),
        init=str(init_path),
        sparsity_per_round=result.sparsity,
        expected_sparsity=1.0 - (1.0 - args.prune_fraction) ** args.rounds,
        dense_test_accuracy=dense_accuracy[0],
        ticket_test_accuracy=ticket_accuracy,
        random_reinit_test_accuracy=reinit_accuracy,
    )
