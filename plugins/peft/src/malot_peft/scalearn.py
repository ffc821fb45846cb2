"""``scalearn``: combine frozen source adapters by learned scaling (ScaLearn, Frohmann et al., ACL Findings 2023).

Paper: *ScaLearn: Simple and Highly Parameter-Efficient Task Transfer by Learning to Scale* (Markus Frohmann,
Carolin Holtermann, Shahed Masoudian, Anne Lauscher, Navid Rekabsaz). Two-stage transfer: adapters are first trained
per source task and frozen; a target task then learns only the scaling of their outputs, ``a'_l = Σ_i ω_{l,i} ⊙
a_{l,i}`` (Eq. 3), with four variants: ScaLearn (a vector per layer and source), ScaLearn++ (a scalar), ScaLearn
Uniform and Uniform++ (shared across layers). The paper's baseline AdapterFusion (attention over the source outputs)
and the plain average are available as ``mode="fusion"``/``"average"`` for comparison.

What is ours and what the library's: the combination (:mod:`malot_peft.core.combine`) is written here; the source
adapters come from ``make_peft`` (our bottleneck adapters, or ``peft`` LoRA converted exactly to the unified form).
Pipeline use: combine task adapters of a prover (e.g. one per proof style or library) for a new target task.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool

if TYPE_CHECKING:
    import torch
    from torch import nn

    from malot_peft.core.combine import CombineHandle

__all__ = ["ScaLearnInput", "ScaLearnOutput", "scalearn", "scalearn_model", "train_combination"]

_PAPER = "ScaLearn: Simple and Highly Parameter-Efficient Task Transfer by Learning to Scale (Frohmann et al., 2023)"


def scalearn_model(model: nn.Module, adapters: list[str | Path], mode: str = "scalearn") -> CombineHandle:
    """Freeze ``model`` and combine the make_peft adapter files ``adapters`` at every module they adapt."""
    from malot_peft.core.combine import apply_combination, read_source_adapter

    return apply_combination(model, [read_source_adapter(p) for p in adapters], mode)


def train_combination(
    handle: CombineHandle, loss_fn: Callable[[nn.Module, int], torch.Tensor], *, steps: int, lr: float
) -> tuple[list[float], bool]:
    """Train the combination weights only; returns the losses and whether every frozen tensor stayed unchanged."""
    import torch

    from malot_peft.core.train import train_params

    trainable_ids = {id(p) for p in handle.trainable.values()}
    frozen = {n: p.detach().clone() for n, p in handle.model.named_parameters() if id(p) not in trainable_ids}
    losses = train_params(handle.trainable.values(), lambda step: loss_fn(handle.model, step), steps=steps, lr=lr)
    now = dict(handle.model.named_parameters())
    return losses, all(torch.equal(now[n].detach(), t) for n, t in frozen.items())


class ScaLearnInput(BaseModel):
    """Arguments of the ``scalearn`` tool."""

    model: str = Field(description="Hugging Face causal-LM folder the source adapters were trained on")
    adapters: list[str] = Field(min_length=1, description="source adapter files written by make_peft")
    data: str = Field(description="target-task texts: .txt (one a line) or .jsonl")
    out: str = Field(description="where to write the learned scaling ω (.safetensors)")
    mode: Literal["scalearn", "scalearn++", "uniform", "uniform++", "average", "fusion"] = "scalearn"
    steps: int = Field(default=100, ge=0)
    lr: float = Field(default=5e-3, gt=0)
    batch_size: int = Field(default=8, gt=0)
    max_length: int = Field(default=64, gt=1)
    seed: int = 0


class ScaLearnOutput(BaseModel):
    """Result of the ``scalearn`` tool."""

    weights: str
    mode: str
    trainable_params: int
    closed_form_params: int
    modules: list[str]
    mean_omega_per_source: list[float] = Field(description="mean ω of each source over layers and dimensions")
    frozen_bit_identical: bool = Field(description="backbone and source adapters unchanged after training")
    loss_first: float | None
    loss_last: float | None


@tool(
    name="scalearn",
    family="peft",
    paper=_PAPER,
    tags=("peft", "adapter", "composition", "multi-task", "few-shot"),
    heavy=True,
)
def scalearn(args: ScaLearnInput) -> ScaLearnOutput:
    """Learn how much of each frozen source adapter a target task needs (ScaLearn's scaling ω), on a causal LM.

    Writes ω (and, for ``fusion``, the fusion layers); the backbone and the source adapters stay bit-identical.
    """
    import torch

    from malot_peft.core.lm import load_causal_lm, load_texts, load_tokenizer, next_token_loss, sample_batch

    if Path(args.out).suffix != ".safetensors":
        raise ToolError(f"out={args.out!r} must end in .safetensors", hint="e.g. --out omega.safetensors")
    torch.manual_seed(args.seed)
    texts = load_texts(args.data)
    model = load_causal_lm(args.model)
    tokenizer = load_tokenizer(args.model)
    handle = scalearn_model(model, [Path(p) for p in args.adapters], args.mode)
    order = torch.Generator().manual_seed(args.seed)

    def loss_fn(net: nn.Module, step: int) -> torch.Tensor:
        ids, mask = sample_batch(tokenizer, texts, args.batch_size, args.max_length, order)
        return next_token_loss(net(input_ids=ids, attention_mask=mask).logits, ids, mask)

    if handle.trainable:
        losses, same = train_combination(handle, loss_fn, steps=args.steps, lr=args.lr)
    else:  # average: nothing to learn; report the loss of the fixed combination
        with torch.no_grad():
            losses, same = [float(loss_fn(handle.model, 0))], True
    from safetensors.torch import save_file

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(
        {n: p.detach().contiguous() for n, p in handle.trainable.items()} or {"empty": torch.zeros(0)},
        str(out),
        metadata={"format": "malot-scalearn", "mode": args.mode, "adapters": "\n".join(args.adapters)},
    )
    n = len(args.adapters)
    omegas = [p.detach() for name, p in handle.trainable.items() if name.endswith("omega")]
    if omegas:
        per_source = torch.stack([o.reshape(n, -1).mean(1) for o in omegas]).mean(0).tolist()
    else:
        per_source = [1.0 / n] * n if args.mode == "average" else []
    return ScaLearnOutput(
        weights=str(out),
        mode=args.mode,
        trainable_params=sum(int(p.numel()) for p in handle.trainable.values()),
        closed_form_params=handle.closed_form,
        modules=handle.modules,
        mean_omega_per_source=[float(v) for v in per_source],
        frozen_bit_identical=same,
        loss_first=losses[0] if losses else None,
        loss_last=losses[-1] if losses else None,
    )
