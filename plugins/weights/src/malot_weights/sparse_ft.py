"""Composable Sparse Fine-Tuning (Ansell et al., 2022): Lottery-Ticket Sparse Fine-Tuning and composition of diffs.

LT-SFT fine-tunes all weights once, keeps the K entries that moved most (the "winning ticket"), resets the model to
its original weights and fine-tunes again with every other entry frozen. The result is a sparse difference ``φ``
with exactly K stored entries; the rest of the model stays bit-identical. Sparse diffs for different tasks or
languages compose by addition: ``θ = θ₀ + φ_lang + φ_task``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_weights.tool_io import rewrite_weights

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "ComposeSftInput",
    "ComposeSftOutput",
    "LtSftInput",
    "LtSftOutput",
    "LtSftResult",
    "SparseDiff",
    "compose_sft",
    "compose_sparse_diffs",
    "lt_sft",
    "lt_sft_tool",
    "sparse_diff",
    "top_k_masks",
    "train_masked",
]

LossFn = Callable[["nn.Module", int], "torch.Tensor"]
"""A training objective: called with the model and the step number, returns a scalar loss."""

_FORMAT = "malot-sparse-diff"


@dataclass
class SparseDiff:
    """A sparse weight difference: for each parameter, flat indices into it and the values added there."""

    indices: dict[str, torch.Tensor]
    values: dict[str, torch.Tensor]
    shapes: dict[str, tuple[int, ...]]

    @property
    def nnz(self) -> int:
        """How many entries the diff stores (exactly K for an LT-SFT diff)."""
        return sum(int(index.numel()) for index in self.indices.values())

    def dense(self, name: str) -> torch.Tensor:
        """The diff of parameter ``name`` as a dense tensor (zeros where nothing is stored)."""
        import torch

        values = self.values[name]
        flat = torch.zeros(int(torch.Size(self.shapes[name]).numel()), dtype=values.dtype)
        flat[self.indices[name]] = values
        return flat.view(self.shapes[name])

    def apply_to(self, name: str, tensor: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        """Return a copy of ``tensor`` with this diff's entries for ``name`` added (times ``scale``)."""
        out = tensor.detach().clone()
        if name not in self.indices:
            return out
        if tuple(out.shape) != self.shapes[name]:
            raise ToolError(
                f"sparse diff for {name!r} has shape {self.shapes[name]}, the weight has {tuple(out.shape)}"
            )
        flat = out.view(-1)
        flat[self.indices[name]] += (self.values[name] * scale).to(flat.dtype)
        return out

    def save(self, path: str | Path) -> Path:
        """Write the diff as one safetensors file (``NAME::indices`` and ``NAME::values``; shapes in the metadata)."""
        from safetensors.torch import save_file

        tensors: dict[str, torch.Tensor] = {}
        for name in self.indices:
            tensors[f"{name}::indices"] = self.indices[name].contiguous()
            tensors[f"{name}::values"] = self.values[name].contiguous()
        meta = {"format": _FORMAT, "shapes": json.dumps({k: list(v) for k, v in self.shapes.items()})}
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(out), metadata=meta)
        return out

    @classmethod
    def load(cls, path: str | Path) -> SparseDiff:
        """Read a diff written by :meth:`save`."""
        from safetensors import safe_open

        file = Path(path)
        if not file.is_file():
            raise ToolError(f"sparse diff {file} does not exist")
        with safe_open(str(file), framework="pt") as handle:
            meta = handle.metadata() or {}
            if meta.get("format") != _FORMAT:
                raise ToolError(f"{file} is not a sparse diff written by lt_sft", hint="create one with lt_sft")
            shapes = {k: tuple(int(x) for x in v) for k, v in json.loads(meta["shapes"]).items()}
            indices = {name: handle.get_tensor(f"{name}::indices") for name in shapes}
            values = {name: handle.get_tensor(f"{name}::values") for name in shapes}
        return cls(indices=indices, values=values, shapes=shapes)


def top_k_masks(
    base: Mapping[str, torch.Tensor],
    tuned: Mapping[str, torch.Tensor],
    k: int,
    names: Sequence[str] | None = None,
) -> dict[str, torch.Tensor]:
    """Boolean masks selecting, over all ``names`` together, the ``k`` entries with the largest ``|tuned - base|``.

    Exactly ``k`` entries are selected (ties broken by ``torch.topk``); names absent from the result have no entry.
    """
    import torch

    chosen = list(names) if names is not None else [n for n in base if base[n].is_floating_point()]
    if not chosen:
        raise ToolError("no parameters to select sparse fine-tuning entries from")
    sizes = [int(base[n].numel()) for n in chosen]
    total = sum(sizes)
    if not 0 < k <= total:
        raise ToolError(f"k={k} must be between 1 and the number of selectable weights ({total})")
    magnitude = torch.cat([(tuned[n].detach().float() - base[n].detach().float()).abs().reshape(-1) for n in chosen])
    top = torch.topk(magnitude, k, sorted=False).indices
    flat = torch.zeros(total, dtype=torch.bool)
    flat[top] = True
    masks: dict[str, torch.Tensor] = {}
    for name, part in zip(chosen, torch.split(flat, sizes), strict=True):
        if bool(part.any()):
            masks[name] = part.view(base[name].shape).clone()
    return masks


def sparse_diff(
    base: Mapping[str, torch.Tensor], tuned: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor]
) -> SparseDiff:
    """The difference ``tuned - base`` restricted to ``masks`` (one stored entry per selected position)."""
    indices: dict[str, torch.Tensor] = {}
    values: dict[str, torch.Tensor] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    for name, mask in masks.items():
        flat_index = mask.reshape(-1).nonzero().squeeze(1)
        delta = (tuned[name].detach() - base[name].detach()).reshape(-1)
        indices[name] = flat_index
        values[name] = delta[flat_index].clone()
        shapes[name] = tuple(int(s) for s in base[name].shape)
    return SparseDiff(indices=indices, values=values, shapes=shapes)


def _l1_to(model: nn.Module, reference: Mapping[str, torch.Tensor]) -> torch.Tensor:
    import torch

    terms = [(p - reference[n]).abs().sum() for n, p in model.named_parameters() if p.requires_grad]
    count = sum(int(p.numel()) for p in model.parameters() if p.requires_grad)
    return torch.stack(terms).sum() / max(count, 1)


def _train(
    model: nn.Module,
    loss_fn: LossFn,
    steps: int,
    lr: float,
    l1_reg: float,
    reference: Mapping[str, torch.Tensor],
    after_step: Callable[[], None] | None = None,
) -> list[float]:
    import torch

    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable or steps <= 0:
        return []
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.0)
    losses: list[float] = []
    for step in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model, step)
        total = loss + l1_reg * _l1_to(model, reference) if l1_reg else loss
        total.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        if after_step is not None:
            after_step()
        losses.append(float(loss.detach()))
    return losses


def train_masked(
    model: nn.Module,
    masks: Mapping[str, torch.Tensor],
    loss_fn: LossFn,
    *,
    steps: int,
    lr: float,
    l1_reg: float = 0.0,
) -> list[float]:
    """Fine-tune only the entries selected by ``masks``; every other entry keeps its current value bit for bit.

    Gradients outside the mask are zeroed, and after every optimizer step the unmasked entries are restored from a
    copy, so optimizer state (momentum, weight decay) cannot move them either. Returns the per-step losses.
    """
    import torch

    params = dict(model.named_parameters())
    frozen_flags = {n: p.requires_grad for n, p in params.items()}
    originals = {n: p.detach().clone() for n, p in params.items() if n in masks}
    hooks = []
    for name, param in params.items():
        if name not in masks:
            param.requires_grad_(False)
            continue
        mask = masks[name].to(param.device)
        hooks.append(param.register_hook(lambda grad, m=mask: grad * m))  # type: ignore[no-untyped-call]

    def restore() -> None:
        with torch.no_grad():
            for name, original in originals.items():
                param = params[name]
                param.copy_(torch.where(masks[name], param, original))

    try:
        return _train(model, loss_fn, steps, lr, l1_reg, originals, restore)
    finally:
        for hook in hooks:
            hook.remove()
        for name, flag in frozen_flags.items():
            params[name].requires_grad_(flag)


@dataclass
class LtSftResult:
    """What :func:`lt_sft` produced: the sparse diff and the loss curves of both phases."""

    diff: SparseDiff
    full_losses: list[float] = field(default_factory=list)
    sparse_losses: list[float] = field(default_factory=list)


def lt_sft(
    model: nn.Module,
    loss_fn: LossFn,
    *,
    k: int,
    full_steps: int,
    sparse_steps: int,
    lr: float,
    l1_reg: float = 0.0,
    names: Sequence[str] | None = None,
) -> LtSftResult:
    """Lottery-Ticket Sparse Fine-Tuning of ``model`` in place.

    Phase 1 fine-tunes every parameter in ``names`` (default: all trainable ones) for ``full_steps``; the ``k``
    entries that moved most form the mask. Phase 2 resets the model to its original weights and fine-tunes only the
    masked entries for ``sparse_steps``. On return the model holds ``θ₀ + φ`` and ``result.diff`` is ``φ`` with
    exactly ``k`` stored entries. ``l1_reg`` adds the paper's L1 pull towards the original weights.
    """
    import torch

    selectable = list(names) if names is not None else [n for n, p in model.named_parameters() if p.requires_grad]
    base = {n: p.detach().clone() for n, p in model.named_parameters()}
    params = dict(model.named_parameters())
    flags = {n: p.requires_grad for n, p in params.items()}
    for name, param in params.items():
        param.requires_grad_(name in selectable)
    try:
        full_losses = _train(model, loss_fn, full_steps, lr, l1_reg, base)
    finally:
        for name, flag in flags.items():
            params[name].requires_grad_(flag)
    tuned = {n: p.detach().clone() for n, p in model.named_parameters()}
    masks = top_k_masks(base, tuned, k, selectable)
    with torch.no_grad():
        for name, param in params.items():
            param.copy_(base[name])
    sparse_losses = train_masked(model, masks, loss_fn, steps=sparse_steps, lr=lr, l1_reg=l1_reg)
    current = {n: p.detach() for n, p in model.named_parameters()}
    diff = sparse_diff(base, current, masks)
    with torch.no_grad():  # hold exactly θ₀ + φ (re-adding the rounded difference can move the last bit)
        for name, param in params.items():
            param.copy_(diff.apply_to(name, base[name]))
    return LtSftResult(diff=diff, full_losses=full_losses, sparse_losses=sparse_losses)


def compose_sparse_diffs(
    base: Mapping[str, torch.Tensor], diffs: Sequence[SparseDiff], scales: Sequence[float] | None = None
) -> dict[str, torch.Tensor]:
    """``θ₀ + Σᵢ sᵢ·φᵢ``: add sparse diffs (scaled, default 1) to a copy of the base weights."""
    factors = list(scales) if scales is not None else [1.0] * len(diffs)
    if len(factors) != len(diffs):
        raise ToolError(f"got {len(diffs)} diffs but {len(factors)} scales")
    unknown = {n for d in diffs for n in d.indices} - set(base)
    if unknown:
        raise ToolError(f"sparse diffs name weights the base lacks: {sorted(unknown)[:5]}")
    out: dict[str, torch.Tensor] = {}
    for name, tensor in base.items():
        value = tensor.detach().clone()
        for diff, factor in zip(diffs, factors, strict=True):
            if name in diff.indices:
                value = diff.apply_to(name, value, factor)
        out[name] = value
    return out


_PAPER = "Composable Sparse Fine-Tuning for Cross-Lingual Transfer (Ansell et al., ACL 2022)"


class LtSftInput(BaseModel):
    """Arguments of the ``lt_sft`` tool."""

    model: str = Field(description="Hugging Face causal-LM folder (the original weights θ₀)")
    data: str = Field(description="training texts: .txt (one a line) or .jsonl ('text' or 'prompt'+'completion')")
    out: str = Field(description="where to write the sparse diff (.safetensors)")
    k: int = Field(gt=0, description="number of weights the sparse fine-tune may change")
    full_steps: int = Field(default=100, ge=0, description="steps of the full fine-tune that picks the mask")
    sparse_steps: int = Field(default=100, ge=0, description="steps of the masked fine-tune from θ₀")
    lr: float = Field(default=1e-3, gt=0)
    batch_size: int = Field(default=8, gt=0)
    max_length: int = Field(default=64, gt=1)
    l1_reg: float = Field(default=0.0, ge=0, description="L1 pull towards θ₀ (the paper's regulariser)")
    include: list[str] | None = Field(default=None, description="only parameters whose name contains one of these")
    seed: int = 0


class LtSftOutput(BaseModel):
    """Result of the ``lt_sft`` tool."""

    diff: str
    k: int
    nnz: int
    per_parameter: dict[str, int]
    full_loss_first: float | None
    full_loss_last: float | None
    sparse_loss_first: float | None
    sparse_loss_last: float | None


@tool(name="lt_sft", family="weights", paper=_PAPER, tags=("sparse", "fine-tuning", "composition"), heavy=True)
def lt_sft_tool(args: LtSftInput) -> LtSftOutput:
    """Lottery-Ticket Sparse Fine-Tuning: learn a K-entry sparse diff of a causal LM on a text file.

    Fine-tunes all weights, keeps the K that moved most, resets to the original weights, and fine-tunes only those
    K entries; writes the diff for ``compose_sft``.
    """
    import torch

    from malot_weights.causal_lm import batch_token_ids, causal_lm_loss, load_causal_lm, load_texts, load_tokenizer

    torch.manual_seed(args.seed)
    model = load_causal_lm(args.model)
    tokenizer = load_tokenizer(args.model)
    texts = load_texts(args.data)
    names = [
        n
        for n, p in model.named_parameters()
        if p.requires_grad and (args.include is None or any(part in n for part in args.include))
    ]
    order = torch.Generator().manual_seed(args.seed)

    def loss_fn(net: nn.Module, step: int) -> torch.Tensor:
        pick = torch.randint(len(texts), (args.batch_size,), generator=order).tolist()
        ids, mask = batch_token_ids(tokenizer, [texts[i] for i in pick], args.max_length)
        return causal_lm_loss(net, ids, mask)

    result = lt_sft(
        model,
        loss_fn,
        k=args.k,
        full_steps=args.full_steps,
        sparse_steps=args.sparse_steps,
        lr=args.lr,
        l1_reg=args.l1_reg,
        names=names,
    )
    path = result.diff.save(args.out)
    return LtSftOutput(
        diff=str(path),
        k=args.k,
        nnz=result.diff.nnz,
        per_parameter={n: int(i.numel()) for n, i in result.diff.indices.items()},
        full_loss_first=result.full_losses[0] if result.full_losses else None,
        full_loss_last=result.full_losses[-1] if result.full_losses else None,
        sparse_loss_first=result.sparse_losses[0] if result.sparse_losses else None,
        sparse_loss_last=result.sparse_losses[-1] if result.sparse_losses else None,
    )


class ComposeSftInput(BaseModel):
    """Arguments of the ``compose_sft`` tool."""

    base: str = Field(description="the original weights: a .safetensors file or a model folder")
    diffs: list[str] = Field(min_length=1, description="sparse diffs written by lt_sft")
    scales: list[float] | None = Field(default=None, description="one factor per diff (default 1)")
    out: str = Field(description="a path ending in .safetensors for one file, else a model folder")


class ComposeSftOutput(BaseModel):
    """Result of the ``compose_sft`` tool."""

    files: list[str]
    changed_entries: int


@tool(name="compose_sft", family="weights", paper=_PAPER, tags=("sparse", "composition"))
def compose_sft(args: ComposeSftInput) -> ComposeSftOutput:
    """Compose sparse fine-tunes: write ``θ₀ + Σ sᵢ·φᵢ``, going through the base one shard at a time."""
    diffs = [SparseDiff.load(path) for path in args.diffs]
    scales = args.scales if args.scales is not None else [1.0] * len(diffs)
    if len(scales) != len(diffs):
        raise ToolError(f"got {len(diffs)} diffs but {len(scales)} scales", hint="give one scale per diff")
    seen: set[str] = set()

    def add(name: str, tensor: torch.Tensor) -> torch.Tensor:
        out = tensor
        for diff, scale in zip(diffs, scales, strict=True):
            if name in diff.indices:
                seen.add(name)
                out = diff.apply_to(name, out, scale)
        return out

    files = rewrite_weights(args.base, args.out, add)
    missing = {n for d in diffs for n in d.indices} - seen
    if missing:
        raise ToolError(
            f"the base lacks weights the diffs change: {sorted(missing)[:5]}",
            hint="compose diffs onto the model they were trained from",
        )
    return ComposeSftOutput(files=[str(f) for f in files], changed_entries=sum(d.nnz for d in diffs))
