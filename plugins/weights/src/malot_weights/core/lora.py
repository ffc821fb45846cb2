"""LoRA adapters in weight space: merge into a base, unmerge, and extract a low-rank adapter from a weight delta.

A LoRA adapter on a linear layer with weight ``W`` (``out × in``) stores ``A`` (``r × in``) and ``B`` (``out × r``);
the adapted weight is ``W + s · B A`` with ``s = alpha / r``. Adapter keys follow the PEFT layout
(``base_model.model.<path>.lora_A[.default].weight``); :func:`lora_targets` maps them to base weight names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from malot.errors import ToolError

if TYPE_CHECKING:
    import torch

__all__ = [
    "LoraPair",
    "extract_lora",
    "load_lora",
    "lora_state_dict",
    "lora_targets",
    "merge_lora",
    "merge_lora_into",
    "unmerge_lora",
]

_LORA_RE = re.compile(r"^(?P<path>.+?)\.lora_(?P<which>[AB])(?:\.(?P<adapter>[^.]+))?\.weight$")
_PREFIXES = ("base_model.model.", "base_model.", "")


@dataclass(frozen=True)
class LoraPair:
    """The ``A`` and ``B`` factors of one adapted weight, and its scale ``alpha / r``."""

    a: torch.Tensor
    b: torch.Tensor
    scale: float

    def delta(self) -> torch.Tensor:
        """``s · B A``, the change the adapter makes to the weight."""
        return self.scale * (self.b.float() @ self.a.float())


def lora_targets(
    lora: Mapping[str, torch.Tensor], base_names: Iterable[str], *, alpha: float | None = None
) -> dict[str, LoraPair]:
    """Pair up ``lora_A``/``lora_B`` tensors and name the base weight each one adapts.

    ``alpha`` defaults to the rank (scale 1). A pair whose target is not among ``base_names`` is an error that
    lists a few base names, since that usually means the adapter belongs to another architecture.
    """
    names = set(base_names)
    halves: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in lora.items():
        m = _LORA_RE.match(key)
        if m is None:
            continue
        halves.setdefault(m.group("path"), {})[m.group("which")] = tensor
    out: dict[str, LoraPair] = {}
    for path, ab in halves.items():
        if set(ab) != {"A", "B"}:
            raise ToolError(f"LoRA adapter for {path!r} has only lora_{next(iter(ab))}", hint="pass a complete adapter")
        target = _target(path, names)
        rank = ab["A"].shape[0]
        out[target] = LoraPair(ab["A"], ab["B"], (alpha if alpha is not None else rank) / rank)
    if not out:
        raise ToolError("no lora_A/lora_B tensors found", hint="pass a PEFT adapter (adapter_model.safetensors)")
    return out


def _target(path: str, names: set[str]) -> str:
    for prefix in _PREFIXES:
        if path.startswith(prefix):
            candidate = path[len(prefix) :] + ".weight"
            if candidate in names:
                return candidate
            if "model." + candidate in names:
                return "model." + candidate
    sample = ", ".join(sorted(names)[:3])
    raise ToolError(f"LoRA target {path!r} matches no base weight (base has e.g. {sample})")


def merge_lora(
    base: Mapping[str, torch.Tensor], lora: Mapping[str, torch.Tensor], *, alpha: float | None = None, sign: float = 1.0
) -> dict[str, torch.Tensor]:
    """``W + sign · (alpha/r) B A`` for every adapted weight; other tensors are copied unchanged."""
    pairs = lora_targets(lora, base, alpha=alpha)
    out: dict[str, torch.Tensor] = {}
    for name, w in base.items():
        pair = pairs.get(name)
        out[name] = w.detach().clone() if pair is None else (w.float() + sign * pair.delta()).to(w.dtype)
    return out


def unmerge_lora(
    merged: Mapping[str, torch.Tensor], lora: Mapping[str, torch.Tensor], *, alpha: float | None = None
) -> dict[str, torch.Tensor]:
    """Undo :func:`merge_lora`: subtract the adapter's delta."""
    return merge_lora(merged, lora, alpha=alpha, sign=-1.0)


def extract_lora(
    base: Mapping[str, torch.Tensor],
    finetuned: Mapping[str, torch.Tensor],
    rank: int,
    *,
    targets: Iterable[str] | None = None,
    prefix: str = "base_model.model.",
) -> dict[str, torch.Tensor]:
    """A rank-``rank`` LoRA (scale 1, i.e. ``alpha = rank``) approximating ``finetuned − base`` on 2-D weights.

    Uses the truncated SVD ``Δ ≈ U_r Σ_r V_rᵀ`` with ``B = U_r Σ_r`` and ``A = V_rᵀ`` (the best rank-r approximation
    in Frobenius norm). ``targets`` limits which weights get adapters (default: every 2-D float tensor).
    """
    import torch

    chosen = (
        list(targets) if targets is not None else [k for k, v in base.items() if v.ndim == 2 and v.is_floating_point()]
    )
    out: dict[str, torch.Tensor] = {}
    for name in chosen:
        delta = (finetuned[name].float() - base[name].float()).detach()
        u, s, vh = torch.linalg.svd(delta, full_matrices=False)
        r = min(rank, s.numel())
        path = prefix + name.removesuffix(".weight")
        out[f"{path}.lora_A.weight"] = vh[:r].contiguous()
        out[f"{path}.lora_B.weight"] = (u[:, :r] * s[:r]).contiguous()
    return out


def lora_state_dict(pairs: Mapping[str, LoraPair], prefix: str = "base_model.model.") -> dict[str, torch.Tensor]:
    """PEFT-style tensors for a mapping of base weight name -> :class:`LoraPair` (scale folded into ``B``)."""
    out: dict[str, torch.Tensor] = {}
    for name, pair in pairs.items():
        path = prefix + name.removesuffix(".weight")
        out[f"{path}.lora_A.weight"] = pair.a
        out[f"{path}.lora_B.weight"] = pair.b * pair.scale
    return out


def load_lora(path: str | Path) -> tuple[dict[str, torch.Tensor], float | None]:
    """A PEFT adapter's tensors and ``lora_alpha``: a folder with ``adapter_model.safetensors`` (and
    ``adapter_config.json``, whose ``lora_alpha`` is returned) or a ``.safetensors`` file (alpha ``None``)."""
    from malot_weights.core.checkpoint import load_state_dict

    source = Path(path)
    if source.is_dir():
        config = source / "adapter_config.json"
        alpha = json.loads(config.read_text(encoding="utf-8")).get("lora_alpha") if config.is_file() else None
        return load_state_dict(source / "adapter_model.safetensors"), (float(alpha) if alpha is not None else None)
    return load_state_dict(source), None


def merge_lora_into(
    base: object,
    lora: Mapping[str, torch.Tensor],
    output: str | Path,
    *,
    alpha: float | None = None,
    sign: float = 1.0,
    copy_side_files_from: str | Path | None = None,
) -> list[Path]:
    """Streaming :func:`merge_lora`: read the base (file, folder, module or state dict) one tensor at a time, add
    ``sign · (alpha/r) B A`` to the adapted weights, and write the result to ``output``; returns the files written."""
    from malot_weights.core.algebra import merge_tensorwise
    from malot_weights.core.checkpoint import open_source

    source = open_source(base)
    try:
        pairs = lora_targets(lora, source.keys(), alpha=alpha)

        def combine(name: str, tensors: list[torch.Tensor]) -> torch.Tensor:
            w = tensors[0]
            pair = pairs.get(name)
            return w if pair is None else (w.float() + sign * pair.delta()).to(w.dtype)

        _, report = merge_tensorwise(
            [source],
            combine,
            output=output,
            copy_side_files_from=copy_side_files_from,
            metadata={"merged_by": "malot-weights merge_lora_into"},
        )
    finally:
        if source is not base:
            source.close()
    return report.files
