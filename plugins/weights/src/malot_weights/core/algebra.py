"""State-dict algebra: nesting, task vectors, weighted sums, parameter blocks, sparse differences, and the streaming
tensor-by-tensor merge every merging tool is built on.

In-memory helpers take and return ``dict[str, Tensor]``. :func:`merge_tensorwise` takes any
:class:`~malot_weights.core.checkpoint.TensorSource` inputs and a per-tensor combine function, and either returns a
state dict or writes the result straight to disk; it reads one tensor from each input at a time, so merging models
larger than memory works (peak memory: the inputs' copies of the largest tensor plus the result).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from malot.errors import ToolError
from malot_weights.core.checkpoint import CheckpointWriter, TensorSource, WeightsLike, open_source
from malot_weights.core.safetensors_io import TensorInfo, dtype_name

if TYPE_CHECKING:
    import torch

__all__ = [
    "MergeReport",
    "SparseDelta",
    "add_scaled",
    "apply_sparse_delta",
    "apply_task_vector",
    "flatten",
    "is_mergeable",
    "merge_tensorwise",
    "parameter_blocks",
    "sparse_delta",
    "task_vector",
    "unflatten",
    "weighted_average",
]

StateDict = dict[str, "torch.Tensor"]
CombineFn = Callable[[str, list["torch.Tensor"]], "torch.Tensor"]


def flatten(nested: Mapping[str, Any], prefix: str = "", sep: str = ".") -> dict[str, Any]:
    """``{"a": {"b": t}}`` -> ``{"a.b": t}``: nested mappings of tensors to one flat state dict."""
    out: dict[str, Any] = {}
    for key, value in nested.items():
        name = f"{prefix}{sep}{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(flatten(value, name, sep))
        else:
            out[name] = value
    return out


def unflatten(flat: Mapping[str, Any], sep: str = ".") -> dict[str, Any]:
    """Inverse of :func:`flatten`: ``{"a.b": t}`` -> ``{"a": {"b": t}}``."""
    out: dict[str, Any] = {}
    for name, value in flat.items():
        node = out
        parts = name.split(sep)
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ToolError(f"cannot unflatten: {name!r} nests under a tensor")
            node = child
        if parts[-1] in node:
            raise ToolError(f"cannot unflatten: {name!r} is both a tensor and a prefix")
        node[parts[-1]] = value
    return out


def is_mergeable(tensor: torch.Tensor) -> bool:
    """Floating-point tensors are averaged; integer and bool buffers (counters, masks, position ids) are copied."""
    return bool(tensor.is_floating_point())


def task_vector(finetuned: Mapping[str, torch.Tensor], base: Mapping[str, torch.Tensor]) -> StateDict:
    """``τ = θ_ft − θ_base`` for every floating-point tensor both share (Ilharco et al., "Editing models with task
    arithmetic")."""
    missing = [k for k in base if k not in finetuned]
    if missing:
        raise ToolError(f"the fine-tuned weights lack {len(missing)} base tensors (first: {missing[0]!r})")
    return {k: finetuned[k].detach() - base[k].detach() for k in base if is_mergeable(base[k])}


def add_scaled(
    base: Mapping[str, torch.Tensor], vectors: Sequence[Mapping[str, torch.Tensor]], coefficients: Sequence[float]
) -> StateDict:
    """``θ = θ_base + Σ_i c_i τ_i`` (non-float tensors copied from the base)."""
    if len(vectors) != len(coefficients):
        raise ToolError(f"{len(vectors)} task vectors but {len(coefficients)} coefficients")
    out: StateDict = {}
    for k, v in base.items():
        result = v.detach().clone()
        if is_mergeable(v):
            for vec, c in zip(vectors, coefficients, strict=True):
                if k in vec:
                    result = result + c * vec[k].to(result.dtype)
        out[k] = result
    return out


def apply_task_vector(base: Mapping[str, torch.Tensor], vector: Mapping[str, torch.Tensor], scale: float) -> StateDict:
    """``θ_base + scale · τ``."""
    return add_scaled(base, [vector], [scale])


def weighted_average(states: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float] | None = None) -> StateDict:
    """``Σ_i w_i θ_i / Σ_i w_i`` tensor by tensor (equal weights by default; non-float tensors from the first)."""
    if not states:
        raise ToolError("nothing to average", hint="pass at least one state dict")
    w = _normalised(weights, len(states))
    out: StateDict = {}
    for k, first in states[0].items():
        if not is_mergeable(first):
            out[k] = first.detach().clone()
            continue
        acc = first.detach().to(_acc_dtype(first)) * w[0]
        for wi, s in zip(w[1:], states[1:], strict=True):
            acc = acc + wi * s[k].detach().to(acc.dtype)
        out[k] = acc.to(first.dtype)
    return out


def _normalised(weights: Sequence[float] | None, n: int) -> list[float]:
    w = [1.0] * n if weights is None else [float(x) for x in weights]
    if len(w) != n:
        raise ToolError(f"{n} models but {len(w)} weights", hint="give one weight per model")
    if any(x < 0 for x in w) or sum(w) <= 0:
        raise ToolError(f"model weights must be non-negative with a positive sum, got {w}")
    total = sum(w)
    return [x / total for x in w]


def _acc_dtype(t: torch.Tensor) -> torch.dtype:
    import torch

    return torch.float64 if t.dtype == torch.float64 else torch.float32


_LAYER_RE = re.compile(r"^(.*?\b(?:layers|layer|h|blocks|block)\.\d+)\.")


def parameter_blocks(names: Sequence[str], granularity: str = "tensor") -> dict[str, list[str]]:
    """Group parameter names into blocks that share one learned coefficient (aTLAS) or one mask.

    ``"tensor"``: every tensor its own block (aTLAS's default: one coefficient per parameter block);
    ``"layer"``: everything under ``...layers.<i>.`` together, other tensors by their parent module;
    ``"module"``: by parent module (``a.b.weight`` and ``a.b.bias`` together); ``"model"``: one block.
    """
    blocks: dict[str, list[str]] = {}
    for name in names:
        if granularity == "tensor":
            key = name
        elif granularity == "module":
            key = name.rsplit(".", 1)[0] if "." in name else name
        elif granularity == "layer":
            m = _LAYER_RE.match(name)
            key = m.group(1) if m else (name.rsplit(".", 1)[0] if "." in name else name)
        elif granularity == "model":
            key = "model"
        else:
            raise ToolError(f"unknown block granularity {granularity!r}", hint="use tensor, module, layer or model")
        blocks.setdefault(key, []).append(name)
    return blocks


@dataclass
class SparseDelta:
    """A sparse difference: for each tensor, flat indices and the values added there (``nnz`` entries in all)."""

    indices: dict[str, torch.Tensor]
    values: dict[str, torch.Tensor]

    @property
    def nnz(self) -> int:
        """Stored entries."""
        return sum(int(i.numel()) for i in self.indices.values())


def sparse_delta(
    finetuned: Mapping[str, torch.Tensor], base: Mapping[str, torch.Tensor], k: int, *, exact: bool = True
) -> SparseDelta:
    """The ``k`` entries of ``θ_ft − θ_base`` with the largest magnitude over all float tensors (global top-k).

    Ties at the threshold are broken by position, so the result has exactly ``min(k, #entries)`` entries.
    """
    import torch

    diffs = task_vector(finetuned, base)
    names = list(diffs)
    if not names:
        return SparseDelta({}, {})
    flat = torch.cat([diffs[n].reshape(-1).abs().float() for n in names])
    k = max(0, min(int(k), flat.numel()))
    chosen = torch.topk(flat, k, sorted=False).indices if k else torch.empty(0, dtype=torch.long)
    chosen, _ = torch.sort(chosen)
    indices: dict[str, torch.Tensor] = {}
    values: dict[str, torch.Tensor] = {}
    offset = 0
    for n in names:
        size = diffs[n].numel()
        lo = int(torch.searchsorted(chosen, offset))
        hi = int(torch.searchsorted(chosen, offset + size))
        if hi > lo:
            local = chosen[lo:hi] - offset
            indices[n] = local
            values[n] = diffs[n].reshape(-1)[local].clone()
        offset += size
    return SparseDelta(indices, values)


def apply_sparse_delta(base: Mapping[str, torch.Tensor], delta: SparseDelta, scale: float = 1.0) -> StateDict:
    """``θ_base`` with ``scale · values`` added at the stored indices; every other entry is bit-identical."""
    out: StateDict = {}
    for k, v in base.items():
        result = v.detach().clone()
        if k in delta.indices:
            flat = result.view(-1)
            flat[delta.indices[k]] += scale * delta.values[k].to(result.dtype)
        out[k] = result
    return out


@dataclass
class MergeReport:
    """What a streaming merge did: tensors merged and copied, bytes written, output files."""

    merged: int
    copied: int
    bytes_written: int
    files: list[Path]


def merge_tensorwise(
    inputs: Sequence[WeightsLike],
    combine: CombineFn,
    *,
    output: str | Path | None = None,
    extra: Mapping[str, Sequence[WeightsLike]] | None = None,
    combine_extra: Callable[[str, list[torch.Tensor], dict[str, list[torch.Tensor]]], torch.Tensor] | None = None,
    out_dtype: torch.dtype | None = None,
    copy_side_files_from: str | Path | None = None,
    max_shard_bytes: int = 2 * 1024**3,
    metadata: Mapping[str, str] | None = None,
    elementwise: bool = False,
    chunk_bytes: int = 64 * 1024**2,
) -> tuple[StateDict | None, MergeReport]:
    """Combine several checkpoints tensor by tensor.

    For each tensor name of the first input (all inputs must have it, with the same shape), reads it from every
    input and calls ``combine(name, tensors)``, or ``combine_extra(name, tensors, extra_tensors)`` when ``extra``
    names further sources (such as one Fisher file per model) read at the same tensor name. Non-float tensors are
    copied from the first input. With ``output`` the result is written to disk as it is produced and ``None`` is
    returned in place of the state dict. When ``combine`` works entry by entry (``elementwise=True``) and the output
    goes to disk, tensors larger than ``chunk_bytes`` are processed in blocks of rows, so peak memory does not grow
    with the largest tensor either.
    """
    if not inputs:
        raise ToolError("nothing to merge", hint="pass at least one model")
    opened: list[TensorSource] = []

    def _open(x: WeightsLike) -> TensorSource:
        src = open_source(x)
        if src is not x:
            opened.append(src)  # only what this function opened is closed here
        return src

    sources = [_open(x) for x in inputs]
    extra_sources = {key: [_open(x) for x in values] for key, values in (extra or {}).items()}
    try:
        names = sources[0].keys()
        infos = {n: sources[0].info(n) for n in names}
        for i, src in enumerate(sources[1:], start=1):
            _check_compatible(sources[0], src, names, i)
        out_infos = [TensorInfo(n, _out_code(infos[n].dtype, out_dtype), infos[n].shape) for n in names]
        state: StateDict | None = None if output is not None else {}
        merged = copied = written = 0
        writer = (
            CheckpointWriter(
                output,
                out_infos,
                max_shard_bytes=max_shard_bytes,
                metadata=metadata,
                copy_side_files_from=copy_side_files_from,
            )
            if output is not None
            else None
        )
        try:
            for n, out_info in zip(names, out_infos, strict=True):
                if not _float_code(infos[n].dtype):
                    result = sources[0].read(n)
                    copied += 1
                elif writer is not None and elementwise and _chunkable(infos[n], chunk_bytes):
                    rows = infos[n].shape[0]
                    step = max(1, chunk_bytes // max(1, infos[n].nbytes // rows))
                    for start in range(0, rows, step):
                        stop = min(rows, start + step)
                        block = _combine_once(n, sources, extra_sources, combine, combine_extra, (start, stop))
                        if tuple(block.shape) != (stop - start, *infos[n].shape[1:]):
                            raise ToolError(f"combining rows of {n!r} gave shape {tuple(block.shape)}")
                        writer.write_rows(n, block)
                        del block
                    written += out_info.nbytes
                    merged += 1
                    continue
                else:
                    result = _combine_once(n, sources, extra_sources, combine, combine_extra, None)
                    merged += 1
                if tuple(result.shape) != infos[n].shape:
                    raise ToolError(f"combining {n!r} gave shape {tuple(result.shape)}, expected {infos[n].shape}")
                written += out_info.nbytes
                if writer is not None:
                    writer.write(n, result)
                else:
                    assert state is not None
                    state[n] = result.to(_torch_dtype(out_info.dtype))
                del result
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        if writer is not None:
            writer.close()
        return state, MergeReport(merged, copied, written, writer.files if writer is not None else [])
    finally:
        for src in opened:
            src.close()


def _combine_once(
    name: str,
    sources: Sequence[TensorSource],
    extra_sources: Mapping[str, Sequence[TensorSource]],
    combine: CombineFn,
    combine_extra: Callable[[str, list[torch.Tensor], dict[str, list[torch.Tensor]]], torch.Tensor] | None,
    rows: tuple[int, int] | None,
) -> torch.Tensor:
    def read(src: TensorSource) -> torch.Tensor:
        return src.read(name) if rows is None else src.read_rows(name, *rows)

    tensors = [read(src) for src in sources]
    if combine_extra is not None:
        extras = {key: [read(s) for s in srcs] for key, srcs in extra_sources.items()}
        return combine_extra(name, tensors, extras)
    return combine(name, tensors)


def _chunkable(info: TensorInfo, chunk_bytes: int) -> bool:
    return len(info.shape) >= 1 and info.shape[0] > 1 and info.nbytes > chunk_bytes


def _out_code(code: str, out_dtype: torch.dtype | None) -> str:
    return dtype_name(out_dtype) if out_dtype is not None and _float_code(code) else code


def _float_code(code: str) -> bool:
    return code in ("F64", "F32", "F16", "BF16")


def _torch_dtype(code: str) -> torch.dtype:
    from malot_weights.core.safetensors_io import dtype_from_name

    return dtype_from_name(code)


def _check_compatible(first: TensorSource, other: TensorSource, names: Sequence[str], index: int) -> None:
    other_names = set(other.keys())
    missing = [n for n in names if n not in other_names]
    if missing:
        raise ToolError(
            f"model {index} lacks {len(missing)} tensors of model 0 (first: {missing[0]!r})",
            hint="merge only models of the same architecture",
        )
    for n in names:
        a, b = first.info(n), other.info(n)
        if a.shape != b.shape:
            raise ToolError(
                f"tensor {n!r} has shape {a.shape} in model 0 but {b.shape} in model {index}",
                hint="merge only models of the same architecture and size",
            )
