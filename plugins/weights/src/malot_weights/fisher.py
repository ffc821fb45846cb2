"""Fisher merging (Matena & Raffel, "Merging Models with Fisher-Weighted Averaging", NeurIPS 2022).

Each model ``i`` (all fine-tuned from one pre-trained model, same architecture) gets a diagonal Fisher ``F_i``
estimated with labels sampled from the model itself (:func:`malot_weights.core.diagonal_fisher`). The merged
weights are, entry by entry,

    θ* = Σ_i λ_i F̃_i θ_i / Σ_i λ_i F̃_i,    F̃_i = max(F_i, floor)   (optionally F_i / mean(F_i) first)

with per-model weights ``λ_i``. The floor keeps entries no model cares about at the plain weighted average instead
of dividing by zero. Equal Fishers give the plain weighted average. Tensors without a Fisher (buffers) are plainly
averaged; integer tensors are copied from the first model.

The ``fisher_merge`` tool works on safetensors files or model folders and streams tensor by tensor (the Fishers too),
so merging checkpoints larger than memory works. Fishers come from files (``fishers``) or are estimated from a text
file (``data``) when the models are Hugging Face causal-LM folders.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_weights import FAMILY
from malot_weights.core import OptionalSource, diagonal_fisher, merge_tensorwise, save_state_dict

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "FisherMergeInput",
    "FisherMergeOutput",
    "estimate_lm_fisher",
    "fisher_merge",
    "fisher_merge_modules",
    "fisher_merge_states",
    "fisher_weighted_tensor",
]

PAPER = "Matena & Raffel, Merging Models with Fisher-Weighted Averaging (NeurIPS 2022)"
DTypeName = Literal["float32", "float16", "bfloat16"]


def fisher_weighted_tensor(
    tensors: Sequence[torch.Tensor],
    fishers: Sequence[torch.Tensor | None],
    weights: Sequence[float],
    *,
    floor: float = 1e-6,
    normalizers: Sequence[float] | None = None,
) -> torch.Tensor:
    """``Σ λ_i F̃_i θ_i / Σ λ_i F̃_i`` for one tensor (computed in float32, returned in the first tensor's dtype).

    A missing Fisher (``None``) counts as all ones. ``normalizers`` divide each Fisher before the floor.
    """
    import torch

    # in place where possible: a streaming merge holds only the inputs, the numerator and the denominator
    num = torch.zeros(tensors[0].shape, dtype=torch.float32)
    den = torch.zeros(tensors[0].shape, dtype=torch.float32)
    for i, (theta, fisher, lam) in enumerate(zip(tensors, fishers, weights, strict=True)):
        if fisher is None:
            num.add_(theta.float(), alpha=lam)
            den.add_(lam)
            continue
        f = fisher.float() if fisher.dtype != torch.float32 else fisher.clone()
        if normalizers is not None:
            f.div_(normalizers[i])
        f.clamp_min_(floor).mul_(lam)
        num.addcmul_(f, theta.float())
        den.add_(f)
        del f
    return num.div_(den).to(tensors[0].dtype)


def fisher_merge_states(
    states: Sequence[Mapping[str, torch.Tensor]],
    fishers: Sequence[Mapping[str, torch.Tensor]],
    *,
    weights: Sequence[float] | None = None,
    floor: float = 1e-6,
    normalize: bool = False,
) -> dict[str, torch.Tensor]:
    """Fisher-merge in-memory state dicts (keys of ``fishers`` are a subset of the state keys)."""
    if len(states) != len(fishers):
        raise ToolError(f"{len(states)} models but {len(fishers)} Fishers", hint="give one Fisher per model")
    lam = _model_weights(weights, len(states))
    norms = [_fisher_mean(f.values()) for f in fishers] if normalize else None
    out: dict[str, torch.Tensor] = {}
    for name, first in states[0].items():
        if not first.is_floating_point():
            out[name] = first.detach().clone()
            continue
        out[name] = fisher_weighted_tensor(
            [s[name] for s in states], [f.get(name) for f in fishers], lam, floor=floor, normalizers=norms
        )
    return out


def _model_weights(weights: Sequence[float] | None, n: int) -> list[float]:
    lam = [1.0] * n if weights is None else [float(w) for w in weights]
    if len(lam) != n:
        raise ToolError(f"{n} models but {len(lam)} model weights", hint="give one weight per model")
    if any(w < 0 for w in lam) or sum(lam) <= 0:
        raise ToolError(f"model weights must be non-negative with a positive sum, got {lam}")
    return lam


def _fisher_mean(tensors: Iterable[torch.Tensor]) -> float:
    total = 0.0
    count = 0
    for t in tensors:
        total += float(t.float().sum())
        count += t.numel()
    if count == 0 or total <= 0:
        raise ToolError("cannot normalise an all-zero Fisher", hint="estimate it on more examples")
    return total / count


def estimate_lm_fisher(
    model: nn.Module,
    tokenizer: Any,
    texts: Sequence[str],
    *,
    max_length: int = 128,
    labels: Literal["sample", "argmax"] = "sample",
    samples_per_example: int = 1,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Diagonal Fisher of a causal LM: next tokens sampled from the model at every position of every text."""

    def forward(m: nn.Module, text: str) -> torch.Tensor:
        enc = tokenizer([text], truncation=True, max_length=max_length, return_tensors="pt")
        logits: torch.Tensor = m(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
        return logits[0][enc["attention_mask"][0].bool()]

    return diagonal_fisher(
        model, texts, forward=forward, labels=labels, samples_per_example=samples_per_example, seed=seed
    )


class FisherMergeInput(BaseModel):
    """Arguments of ``fisher_merge``."""

    models: list[str] = Field(min_length=1, description="Checkpoints to merge: .safetensors files or model folders.")
    output: str = Field(description="Where to write: a .safetensors file, or a folder (sharded if large).")
    fishers: list[str] | None = Field(
        None, description="Diagonal Fisher of each model as a .safetensors file or folder (same tensor names)."
    )
    data: str | None = Field(
        None,
        description="Text file (.txt one per line, or .jsonl with 'text') to estimate Fishers from; the models must "
        "be Hugging Face causal-LM folders. Used when 'fishers' is not given.",
    )
    n_examples: int = Field(64, ge=1, description="How many texts of 'data' to estimate each Fisher on.")
    max_length: int = Field(128, ge=2, description="Token limit per text when estimating Fishers.")
    weights: list[float] | None = Field(None, description="Per-model weights λ_i (default: all 1).")
    fisher_floor: float = Field(1e-6, ge=0, description="Lower bound applied to every Fisher value.")
    normalize_fishers: bool = Field(False, description="Divide each model's Fisher by its mean before merging.")
    dtype: DTypeName | None = Field(None, description="Dtype of the merged floating-point tensors (default: as input).")
    save_fishers: str | None = Field(None, description="Folder to save estimated Fishers in (fisher_<i>.safetensors).")
    seed: int = Field(0, description="Seed for sampling labels when estimating Fishers.")


class FisherMergeOutput(BaseModel):
    """Result of ``fisher_merge``."""

    output: str
    files: list[str]
    tensors_merged: int
    tensors_copied: int
    bytes_written: int
    fisher_files: list[str]


@tool(family=FAMILY, paper=PAPER, tags=["merging", "fisher"], heavy=True)
def fisher_merge(args: FisherMergeInput) -> FisherMergeOutput:
    """Merge fine-tuned models by Fisher-weighted averaging of their parameters (Matena & Raffel, 2022).

    Every parameter entry is averaged with weights λ_i·F_i, where F_i is model i's diagonal Fisher information
    (estimated with labels sampled from the model): parameters a model is confident about dominate. Streams tensor
    by tensor, so checkpoints larger than memory can be merged. Without Fishers and data it is a weighted average.
    """
    import torch

    lam = _model_weights(args.weights, len(args.models))
    fisher_paths: list[str] | None = args.fishers
    if fisher_paths is None and args.data is not None:
        fisher_paths = _estimate_fishers_to_files(args)
    if fisher_paths is not None and len(fisher_paths) != len(args.models):
        raise ToolError(f"{len(args.models)} models but {len(fisher_paths)} Fishers", hint="give one Fisher per model")
    norms: list[float] | None = None
    if fisher_paths is not None and args.normalize_fishers:
        norms = [_file_fisher_mean(p) for p in fisher_paths]
    out_dtype = getattr(torch, args.dtype) if args.dtype else None
    reference = next((m for m in args.models if Path(m).is_dir()), None)

    def combine(name: str, tensors: list[torch.Tensor]) -> torch.Tensor:
        return fisher_weighted_tensor(tensors, [None] * len(tensors), lam, floor=args.fisher_floor)

    def combine_with_fishers(
        name: str, tensors: list[torch.Tensor], extra: dict[str, list[torch.Tensor]]
    ) -> torch.Tensor:
        return fisher_weighted_tensor(tensors, extra["fishers"], lam, floor=args.fisher_floor, normalizers=norms)

    fisher_sources = [OptionalSource(p) for p in fisher_paths] if fisher_paths is not None else []
    try:
        _, report = merge_tensorwise(
            args.models,
            combine,
            output=args.output,
            extra={"fishers": fisher_sources} if fisher_sources else None,
            combine_extra=combine_with_fishers if fisher_sources else None,
            out_dtype=out_dtype,
            copy_side_files_from=reference,
            metadata={"merged_by": "malot-weights fisher_merge", "models": str(len(args.models))},
            elementwise=True,
        )
    finally:
        for source in fisher_sources:
            source.close()
    return FisherMergeOutput(
        output=args.output,
        files=[str(f) for f in report.files],
        tensors_merged=report.merged,
        tensors_copied=report.copied,
        bytes_written=report.bytes_written,
        fisher_files=list(fisher_paths or []),
    )


def _file_fisher_mean(path: str) -> float:
    from malot_weights.core import iter_tensors, open_source

    source = open_source(path)
    try:
        return _fisher_mean(t for _, t in iter_tensors(source))
    finally:
        source.close()


def _estimate_fishers_to_files(args: FisherMergeInput) -> list[str]:
    from malot_weights.causal_lm import load_causal_lm, load_texts, load_tokenizer

    assert args.data is not None
    texts = load_texts(args.data)[: args.n_examples]
    folder = (
        Path(args.save_fishers)
        if args.save_fishers
        else Path(args.output).with_suffix("").parent / (Path(args.output).stem + "-fishers")
    )
    paths: list[str] = []
    for i, model_path in enumerate(args.models):
        if not Path(model_path).is_dir():
            raise ToolError(
                f"estimating a Fisher needs a Hugging Face model folder, got {model_path}",
                hint="pass model folders, or precomputed Fisher files with 'fishers'",
            )
        model = load_causal_lm(model_path)
        fisher = estimate_lm_fisher(
            model, load_tokenizer(model_path), texts, max_length=args.max_length, seed=args.seed + i
        )
        names = set(model.state_dict())
        del model
        # parameter names equal state-dict names for HF models; keep only those stored in the checkpoint
        fisher = {k: v for k, v in fisher.items() if k in names}
        path = folder / f"fisher_{i}.safetensors"
        save_state_dict(fisher, path, metadata={"fisher_of": str(model_path), "examples": str(len(texts))})
        paths.append(str(path))
    return paths


def fisher_merge_modules(
    models: Sequence[nn.Module],
    examples: Sequence[Iterable[Any]],
    *,
    forward: Callable[[nn.Module, Any], torch.Tensor] | None = None,
    weights: Sequence[float] | None = None,
    floor: float = 1e-6,
    normalize: bool = False,
    labels: Literal["sample", "expected", "argmax"] = "sample",
    samples_per_example: int = 1,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Estimate each model's Fisher on its own examples and return the merged state dict (in memory)."""
    fishers = [
        diagonal_fisher(m, ex, forward=forward, labels=labels, samples_per_example=samples_per_example, seed=seed + i)
        for i, (m, ex) in enumerate(zip(models, examples, strict=True))
    ]
    return fisher_merge_states(
        [m.state_dict() for m in models], fishers, weights=weights, floor=floor, normalize=normalize
    )
