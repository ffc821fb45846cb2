"""Task arithmetic and aTLAS (Zhang et al., "Knowledge Composition using Task Vectors with Learned Anisotropic
Scaling", NeurIPS 2024).

A task vector is ``τ_i = θ_i − θ_0`` (fine-tuned minus pre-trained weights). *Task arithmetic* adds them with one
coefficient per task, ``θ = θ_0 + Σ_i c_i τ_i``. *aTLAS* scales each *parameter block* (by default each tensor) of
each task vector separately, ``θ = θ_0 + Σ_i Σ_b λ_{b,i} τ_i^{(b)}``, and learns the coefficients ``λ`` by gradient
descent, either supervised (cross-entropy on a few labelled examples) or unsupervised (minimising the entropy of the
model's predictions on unlabelled inputs), with the weights themselves frozen. With every ``λ_{b,i} = c`` aTLAS is
task arithmetic with coefficient ``c``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_weights import FAMILY
from malot_weights.core import (
    OptionalSource,
    add_scaled,
    load_state_dict,
    merge_tensorwise,
    parameter_blocks,
    task_vector,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "AtlasInput",
    "AtlasOutput",
    "AtlasResult",
    "TaskArithmeticInput",
    "TaskArithmeticOutput",
    "atlas",
    "compose_blockwise",
    "entropy_loss",
    "learn_atlas",
    "supervised_loss",
    "task_arithmetic",
    "task_arithmetic_states",
]

PAPER_ATLAS = "Zhang et al., Knowledge Composition using Task Vectors with Learned Anisotropic Scaling (NeurIPS 2024)"
PAPER_TA = "Ilharco et al., Editing Models with Task Arithmetic (ICLR 2023)"
Objective = Literal["supervised", "entropy"]
Granularity = Literal["tensor", "module", "layer", "model"]


def compose_blockwise(
    base: Mapping[str, torch.Tensor],
    vectors: Sequence[Mapping[str, torch.Tensor]],
    coefficients: Mapping[str, Sequence[float]],
    blocks: Mapping[str, Sequence[str]],
) -> dict[str, torch.Tensor]:
    """``θ_0 + Σ_i Σ_b λ_{b,i} τ_i^{(b)}`` with ``coefficients[block][i]``; tensors in no block stay at the base."""
    owner = {name: block for block, names in blocks.items() for name in names}
    out: dict[str, torch.Tensor] = {}
    for name, value in base.items():
        result = value.detach().clone()
        block = owner.get(name)
        if block is not None and result.is_floating_point():
            for c, vec in zip(coefficients[block], vectors, strict=True):
                if name in vec:
                    result = result + float(c) * vec[name].to(result.dtype)
        out[name] = result
    return out


@dataclass
class AtlasResult:
    """Learned coefficients (block -> one per task), the composed state dict, and the loss at each step."""

    coefficients: dict[str, list[float]]
    state: dict[str, torch.Tensor]
    blocks: dict[str, list[str]]
    losses: list[float] = field(default_factory=list)


CallFn = Callable[["nn.Module", dict[str, "torch.Tensor"], Any], "torch.Tensor"]
LossFn = Callable[["torch.Tensor", Any], "torch.Tensor"]


def _default_call(model: nn.Module, params: dict[str, torch.Tensor], batch: Any) -> torch.Tensor:
    from torch.func import functional_call

    inputs = batch[0] if isinstance(batch, tuple | list) else batch
    out = functional_call(model, params, (inputs,)) if not isinstance(inputs, Mapping) else None
    if out is None:
        out = functional_call(model, params, (), dict(inputs))
    logits: torch.Tensor = out.logits if hasattr(out, "logits") else out
    return logits


def supervised_loss(logits: torch.Tensor, batch: Any) -> torch.Tensor:
    """Cross-entropy against ``batch[1]`` (labels; ``-100`` entries ignored)."""
    import torch.nn.functional as F

    labels = batch[1]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=-100)


def entropy_loss(logits: torch.Tensor, batch: Any) -> torch.Tensor:
    """Mean entropy of the predicted distributions (the unsupervised objective; no labels used)."""
    import torch

    log_p = torch.log_softmax(logits.float(), dim=-1)
    entropy = -(log_p.exp() * log_p).sum(-1)
    mask = _prediction_mask(batch, entropy.shape)
    return entropy[mask].mean() if mask is not None else entropy.mean()


def _tensor_or_zero(vector: Mapping[str, torch.Tensor], name: str, like: torch.Tensor) -> torch.Tensor:
    import torch

    return vector[name].to(like.dtype) if name in vector else torch.zeros_like(like)


def _prediction_mask(batch: Any, shape: Sequence[int]) -> torch.Tensor | None:
    inputs = batch[0] if isinstance(batch, tuple | list) else batch
    if (
        isinstance(inputs, Mapping)
        and "attention_mask" in inputs
        and tuple(inputs["attention_mask"].shape) == tuple(shape)
    ):
        mask: torch.Tensor = inputs["attention_mask"].bool()
        return mask
    return None


def learn_atlas(
    model: nn.Module,
    vectors: Sequence[Mapping[str, torch.Tensor]],
    batches: Sequence[Any],
    *,
    objective: Objective = "supervised",
    granularity: Granularity = "tensor",
    steps: int = 100,
    lr: float = 0.05,
    init: float = 0.3,
    base: Mapping[str, torch.Tensor] | None = None,
    call: CallFn | None = None,
    loss_fn: LossFn | None = None,
) -> AtlasResult:
    """Learn aTLAS coefficients for ``vectors`` on ``batches`` (cycled for ``steps`` Adam steps), weights frozen.

    ``model`` provides the architecture and, unless ``base`` is given, the pre-trained weights ``θ_0``. Each batch
    is passed to ``call(model, params, batch)`` (default: ``functional_call`` with ``batch[0]`` as the input, or as
    keyword arguments when it is a mapping) which returns logits; ``loss_fn(logits, batch)`` defaults to
    cross-entropy against ``batch[1]`` (supervised) or the prediction entropy (unsupervised).
    """
    import torch

    if not vectors:
        raise ToolError("aTLAS needs at least one task vector")
    if not batches and steps > 0:
        raise ToolError("aTLAS needs data to learn coefficients from", hint="pass at least one batch")
    base_state = {k: v.detach() for k, v in (base or model.state_dict()).items()}
    names = [n for n in base_state if base_state[n].is_floating_point() and any(n in v for v in vectors)]
    blocks = parameter_blocks(names, granularity)
    block_names = list(blocks)
    lam = torch.full((len(block_names), len(vectors)), float(init), requires_grad=True)
    fn = call or _default_call
    objective_fn = loss_fn or (supervised_loss if objective == "supervised" else entropy_loss)
    optimizer = torch.optim.Adam([lam], lr=lr)
    block_of = {n: i for i, b in enumerate(block_names) for n in blocks[b]}
    stacked = {n: torch.stack([_tensor_or_zero(v, n, base_state[n]) for v in vectors]) for n in names}
    was_training = model.training
    model.eval()
    losses: list[float] = []
    try:
        for step in range(steps):
            batch = batches[step % len(batches)]
            params = {n: base_state[n] + torch.tensordot(lam[block_of[n]], stacked[n], dims=1) for n in names}
            loss = objective_fn(fn(model, params, batch), batch)
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            losses.append(float(loss.detach()))
    finally:
        model.train(was_training)
    coefficients = {b: [float(x) for x in lam.detach()[i]] for i, b in enumerate(block_names)}
    state = compose_blockwise(base_state, vectors, coefficients, blocks)
    return AtlasResult(coefficients=coefficients, state=state, blocks=blocks, losses=losses)


# --- tools -------------------------------------------------------------------------------------------------------


class TaskArithmeticInput(BaseModel):
    """Arguments of ``task_arithmetic``."""

    base: str = Field(description="The pre-trained checkpoint θ_0 (.safetensors file or model folder).")
    models: list[str] = Field(
        default_factory=list, description="Fine-tuned checkpoints θ_i; their task vectors are θ_i − θ_0."
    )
    task_vectors: list[str] = Field(default_factory=list, description="Task vector files τ_i (added as they are).")
    coefficients: float | list[float] = Field(
        0.3, description="One coefficient for every task vector, or one per task vector (models first)."
    )
    output: str = Field(description="Where to write the result: a .safetensors file or a folder.")
    dtype: Literal["float32", "float16", "bfloat16"] | None = Field(None, description="Output dtype of float tensors.")


class TaskArithmeticOutput(BaseModel):
    """Result of ``task_arithmetic``."""

    output: str
    files: list[str]
    coefficients: list[float]
    tensors_merged: int
    bytes_written: int


@tool(family=FAMILY, paper=PAPER_TA, tags=["merging", "task-vectors"], heavy=True)
def task_arithmetic(args: TaskArithmeticInput) -> TaskArithmeticOutput:
    """Add scaled task vectors to a pre-trained model: θ = θ_0 + Σ_i c_i (θ_i − θ_0) (task arithmetic).

    Streams tensor by tensor, so large checkpoints merge in little memory. Task vectors may be given as fine-tuned
    checkpoints (``models``) or as difference files (``task_vectors``); tensors missing from a task-vector file
    count as zero.
    """
    import torch

    n_vectors = len(args.models) + len(args.task_vectors)
    if n_vectors == 0:
        raise ToolError("no task vectors given", hint="pass fine-tuned 'models' or 'task_vectors' files")
    coeffs = args.coefficients if isinstance(args.coefficients, list) else [args.coefficients] * n_vectors
    if len(coeffs) != n_vectors:
        raise ToolError(f"{n_vectors} task vectors but {len(coeffs)} coefficients")
    n_models = len(args.models)
    vector_sources = [OptionalSource(p) for p in args.task_vectors]

    def combine(name: str, tensors: list[torch.Tensor], extra: dict[str, list[torch.Tensor]]) -> torch.Tensor:
        base = tensors[0]
        acc = base.float()
        for c, theta in zip(coeffs[:n_models], tensors[1:], strict=True):
            acc.add_(theta.float() - base.float(), alpha=c)
        for c, tau in zip(coeffs[n_models:], extra.get("vectors", []), strict=True):
            if tau is not None:
                acc.add_(tau.float(), alpha=c)
        return acc.to(base.dtype)

    try:
        _, report = merge_tensorwise(
            [args.base, *args.models],
            lambda name, tensors: combine(name, tensors, {}),
            extra={"vectors": vector_sources} if vector_sources else None,
            combine_extra=combine if vector_sources else None,
            output=args.output,
            out_dtype=getattr(torch, args.dtype) if args.dtype else None,
            copy_side_files_from=args.base if Path(args.base).is_dir() else None,
            metadata={"merged_by": "malot-weights task_arithmetic"},
            elementwise=True,
        )
    finally:
        for source in vector_sources:
            source.close()
    return TaskArithmeticOutput(
        output=args.output,
        files=[str(f) for f in report.files],
        coefficients=[float(c) for c in coeffs],
        tensors_merged=report.merged,
        bytes_written=report.bytes_written,
    )


class AtlasInput(BaseModel):
    """Arguments of ``atlas``."""

    base: str = Field(description="The pre-trained Hugging Face causal-LM folder θ_0.")
    models: list[str] = Field(min_length=1, description="Fine-tuned checkpoints (same architecture) giving τ_i.")
    data: str = Field(description="Texts (.txt one per line, or .jsonl with 'text') to learn the coefficients on.")
    objective: Objective = Field("entropy", description="'supervised' (next-token loss) or 'entropy' (unsupervised).")
    granularity: Granularity = Field("tensor", description="Parameter blocks sharing one coefficient.")
    steps: int = Field(50, ge=0, description="Adam steps.")
    lr: float = Field(0.05, gt=0, description="Learning rate of the coefficients.")
    init: float = Field(0.3, description="Initial value of every coefficient.")
    batch_size: int = Field(8, ge=1, description="Texts per step.")
    max_length: int = Field(64, ge=2, description="Token limit per text.")
    output: str = Field(description="Model folder to write (weights, config, tokenizer, atlas_coefficients.json).")
    seed: int = 0


class AtlasOutput(BaseModel):
    """Result of ``atlas``."""

    output: str
    blocks: int
    first_loss: float | None
    last_loss: float | None
    coefficients_file: str
    mean_coefficient: list[float]


@tool(
    family=FAMILY, paper=PAPER_ATLAS, tags=["merging", "task-vectors", "few-shot", "test-time-adaptation"], heavy=True
)
def atlas(args: AtlasInput) -> AtlasOutput:
    """Compose task vectors with learned anisotropic (per-block) scaling: aTLAS (Zhang et al., 2024).

    Learns one coefficient per parameter block and task vector on a few texts, supervised (next-token loss) or
    unsupervised (entropy of the predictions), with the weights frozen, then writes the composed model.
    """
    import torch

    from malot_weights.causal_lm import batch_token_ids, load_causal_lm, load_texts, load_tokenizer

    torch.manual_seed(args.seed)
    model = load_causal_lm(args.base)
    tokenizer = load_tokenizer(args.base)
    # the stored tensors only: a tied output embedding is not a separate parameter to scale
    base = load_state_dict(args.base)
    vectors = [task_vector(load_state_dict(m), base) for m in args.models]
    texts = load_texts(args.data)
    batches: list[Any] = []
    for i in range(0, len(texts), args.batch_size):
        ids, mask = batch_token_ids(tokenizer, texts[i : i + args.batch_size], args.max_length)
        batches.append(({"input_ids": ids, "attention_mask": mask}, ids))

    def lm_call(m: nn.Module, params: dict[str, torch.Tensor], batch: Any) -> torch.Tensor:
        from torch.func import functional_call

        logits: torch.Tensor = functional_call(m, params, (), dict(batch[0])).logits[:, :-1]
        return logits

    def lm_loss(logits: torch.Tensor, batch: Any) -> torch.Tensor:
        inputs, ids = batch
        mask = inputs["attention_mask"][:, 1:]
        if args.objective == "supervised":
            labels = ids[:, 1:].masked_fill(mask == 0, -100)
            return supervised_loss(logits, (inputs, labels))
        log_p = torch.log_softmax(logits.float(), dim=-1)
        entropy = -(log_p.exp() * log_p).sum(-1)
        return entropy[mask.bool()].mean()

    result = learn_atlas(
        model,
        vectors,
        batches,
        objective=args.objective,
        granularity=args.granularity,
        steps=args.steps,
        lr=args.lr,
        init=args.init,
        base=base,
        call=lm_call,
        loss_fn=lm_loss,
    )
    out = Path(args.output)
    model.load_state_dict(result.state, strict=False)
    hf_model: Any = model  # a transformers PreTrainedModel
    hf_model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    coeff_file = out / "atlas_coefficients.json"
    coeff_file.write_text(json.dumps({"blocks": result.blocks, "coefficients": result.coefficients}, indent=1))
    per_task = [sum(c[i] for c in result.coefficients.values()) / len(result.coefficients) for i in range(len(vectors))]
    return AtlasOutput(
        output=str(out),
        blocks=len(result.blocks),
        first_loss=result.losses[0] if result.losses else None,
        last_loss=result.losses[-1] if result.losses else None,
        coefficients_file=str(coeff_file),
        mean_coefficient=per_task,
    )


def task_arithmetic_states(
    base: Mapping[str, torch.Tensor],
    finetuned: Sequence[Mapping[str, torch.Tensor]],
    coefficient: float | Sequence[float],
) -> dict[str, torch.Tensor]:
    """In-memory task arithmetic: ``θ_0 + Σ_i c_i (θ_i − θ_0)``."""
    coeffs = [float(coefficient)] * len(finetuned) if isinstance(coefficient, int | float) else list(coefficient)
    return add_scaled(base, [task_vector(f, base) for f in finetuned], coeffs)
