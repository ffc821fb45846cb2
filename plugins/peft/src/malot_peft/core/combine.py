"""Combining frozen source adapters at every adapted module: ScaLearn's learned scaling, and its baselines.

At a module whose output is ``h`` and whose source adapters give modifications ``δ_1 … δ_N`` (each the unified form
``s·f(x W_down) W_up`` of a trained adapter), the combination is

* ``scalearn`` (ScaLearn, Eq. 3): ``h + Σ_i ω_{l,i} ⊙ δ_i``, ``ω_{l,i} ∈ R^d`` per layer ``l`` (``L·N·d`` params);
* ``scalearn++``: a scalar ``ω_{l,i}`` per layer (``L·N``);
* ``uniform``: ``ω_i ∈ R^d`` shared by all layers (``N·d``); ``uniform++``: one scalar per source (``N``);
* ``average`` (the simple baseline): fixed ``ω_i = 1/N`` (nothing to learn);
* ``fusion`` (AdapterFusion, Pfeiffer et al. 2021, the paper's main baseline): attention of the query ``h W_Q``
  over the keys ``δ_i W_K``, output ``Σ_i softmax_i · δ_i W_V`` (``3·(d² + d)`` per layer).

Source adapters are :class:`~malot_peft.core.unified.UnifiedDelta` modules; LoRA adapters trained through ``peft``
are converted to that form (``W_down = A``, ``W_up = B``, ``s = α/r``), which the make_peft tests show is exact.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from malot.errors import ToolError
from malot_peft.core.apply import PeftSpec
from malot_peft.core.unified import UnifiedDelta

__all__ = [
    "CombinationMode",
    "CombineHandle",
    "ScaledCombination",
    "SourceAdapter",
    "apply_combination",
    "combination_param_count",
    "read_source_adapter",
]

CombinationMode = Literal["scalearn", "scalearn++", "uniform", "uniform++", "average", "fusion"]
MODES: tuple[str, ...] = ("scalearn", "scalearn++", "uniform", "uniform++", "average", "fusion")


@dataclass
class SourceAdapter:
    """One trained source adapter: its insertion form and one modification per adapted module name."""

    insertion: Literal["parallel", "sequential"]
    deltas: dict[str, UnifiedDelta]


def combination_param_count(mode: str, layers: int, sources: int, d: int) -> int:
    """Closed-form number of combination parameters (ScaLearn, Table 1 of the paper; AdapterFusion)."""
    counts = {
        "scalearn": layers * sources * d,
        "scalearn++": layers * sources,
        "uniform": sources * d,
        "uniform++": sources,
        "average": 0,
        "fusion": layers * 3 * (d * d + d),
    }
    if mode not in counts:
        raise ToolError(f"unknown combination mode {mode!r}", hint=f"use one of {list(counts)}")
    return counts[mode]


class ScaledCombination(nn.Module):
    """A frozen module plus ``N`` frozen source modifications, combined by learned (or fixed) weights."""

    def __init__(
        self,
        base: nn.Module,
        deltas: list[UnifiedDelta],
        insertion: str,
        mode: str,
        omega: nn.Parameter | None,
        d: int,
    ) -> None:
        super().__init__()
        self.base = base
        self.sources = nn.ModuleList(deltas)
        for param in self.sources.parameters():
            param.requires_grad_(False)
        self.insertion = insertion
        self.mode = mode
        self.omega = omega  # shared between layers for the uniform modes (the same Parameter object)
        if mode == "fusion":
            self.query = nn.Linear(d, d)
            self.key = nn.Linear(d, d)
            self.value = nn.Linear(d, d)
            with torch.no_grad():  # AdapterFusion starts near the plain sum: identity values, small query/key
                self.value.weight.copy_(torch.eye(d))
                self.value.bias.zero_()
                nn.init.normal_(self.query.weight, std=0.01)
                nn.init.normal_(self.key.weight, std=0.01)

    def combine(self, h: torch.Tensor, outs: torch.Tensor) -> torch.Tensor:
        """``Σ_i ω_i ⊙ δ_i`` for stacked modifications ``outs`` of shape ``(N, ..., d)``."""
        n = outs.shape[0]
        if self.mode == "average":
            return outs.mean(dim=0)
        if self.mode == "fusion":
            q = self.query(h)
            k = self.key(outs)
            v = self.value(outs)
            attn = torch.softmax((k * q.unsqueeze(0)).sum(-1), dim=0)
            fused: torch.Tensor = (attn.unsqueeze(-1) * v).sum(0)
            return fused
        assert self.omega is not None
        omega = self.omega.view(n, *([1] * (outs.dim() - 2)), -1)  # (N, 1.., d) or (N, 1.., 1)
        scaled: torch.Tensor = (omega * outs).sum(0)
        return scaled

    def forward(self, *args: torch.Tensor, **kwargs: torch.Tensor) -> torch.Tensor:
        """The base output plus the combined source modifications."""
        out = self.base(*args, **kwargs)
        h = out[0] if isinstance(out, tuple) else out
        x = (args[0] if args else kwargs["hidden_states"]) if self.insertion == "parallel" else h
        outs = torch.stack([delta(x) for delta in self.sources])
        new = h + self.combine(h, outs)
        return (new, *out[1:]) if isinstance(out, tuple) else new  # type: ignore[return-value]


def _lora_to_unified(tensors: dict[str, torch.Tensor], spec: PeftSpec) -> dict[str, UnifiedDelta]:
    deltas: dict[str, UnifiedDelta] = {}
    scale = spec.resolved_scale()
    for name, a in tensors.items():
        if ".lora_A." not in name:
            continue
        module = name.split(".lora_A.")[0].removeprefix("base_model.model.")
        b = tensors[name.replace(".lora_A.", ".lora_B.")]
        delta = UnifiedDelta(a.shape[1], b.shape[0], a.shape[0], fn="identity", scale=scale, bias=False)
        with torch.no_grad():
            delta.down.weight.copy_(a)
            delta.up.weight.copy_(b)
        deltas[module] = delta
    return deltas


def read_source_adapter(path: str | Path) -> SourceAdapter:
    """Read an adapter file written by make_peft as per-module unified modifications."""
    from safetensors import safe_open

    file = Path(path)
    if not file.is_file():
        raise ToolError(f"source adapter {file} does not exist", hint="train source adapters with make_peft")
    with safe_open(str(file), framework="pt") as handle:
        meta = handle.metadata() or {}
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
    if meta.get("format") != "malot-peft-adapter":
        raise ToolError(f"{file} is not an adapter written by make_peft", hint="train source adapters with make_peft")
    bad = [name for name, tensor in tensors.items() if not bool(torch.isfinite(tensor).all())]
    if bad:
        raise ToolError(f"source adapter {file} holds NaN or infinite values in {bad[:3]}", hint="retrain that adapter")
    spec = PeftSpec.model_validate(json.loads(meta["spec"]))
    if spec.form in ("prefix", "mam"):
        raise ToolError(
            f"{file} is a {spec.form} adapter; ScaLearn combines per-module modifications",
            hint="train the sources with form adapter, parallel_adapter, lora or custom",
        )
    if spec.form == "lora" and spec.backend == "peft":
        return SourceAdapter(insertion="parallel", deltas=_lora_to_unified(tensors, spec))
    insertion = {"lora": "parallel", "adapter": "sequential", "parallel_adapter": "parallel"}.get(
        spec.form, spec.insertion or "parallel"
    )
    fn = spec.fn or ("identity" if spec.form == "lora" else "relu")
    bias = spec.bias and spec.form != "lora"
    grouped: dict[str, dict[str, torch.Tensor]] = {}
    for name, tensor in tensors.items():
        module, _, local = name.partition(".delta.")
        grouped.setdefault(module, {})[local] = tensor
    deltas: dict[str, UnifiedDelta] = {}
    for module, parts in grouped.items():
        down = parts["down.weight"]
        up = parts["up.weight"]
        delta = UnifiedDelta(down.shape[1], up.shape[0], down.shape[0], fn=fn, scale=spec.resolved_scale(), bias=bias)
        delta.load_state_dict(parts)
        deltas[module] = delta
    return SourceAdapter(insertion=insertion, deltas=deltas)  # type: ignore[arg-type]


@dataclass
class CombineHandle:
    """A model whose adapted modules combine frozen source adapters."""

    model: nn.Module
    trainable: dict[str, nn.Parameter]
    closed_form: int
    modules: list[str]

    @property
    def trainable_count(self) -> int:
        """Number of trainable combination scalars, counted from the parameters."""
        return sum(int(p.numel()) for p in self.trainable.values())


def apply_combination(model: nn.Module, sources: list[SourceAdapter], mode: str) -> CombineHandle:
    """Freeze ``model`` and wrap every module the sources adapt with a :class:`ScaledCombination`.

    All sources must adapt the same modules with the same insertion form (adapters trained with one spec).
    ``ω`` starts at ``1/N`` (the average of the sources).
    """
    if mode not in MODES:
        raise ToolError(f"unknown combination mode {mode!r}", hint=f"use one of {list(MODES)}")
    if not sources:
        raise ToolError("no source adapters given", hint="pass at least one adapter file")
    modules = sorted(sources[0].deltas)
    for index, source in enumerate(sources[1:], start=1):
        if sorted(source.deltas) != modules or source.insertion != sources[0].insertion:
            raise ToolError(
                f"source adapter {index} adapts other modules or another insertion form than source 0",
                hint="train every source adapter with the same make_peft form, targets and base model",
            )
    for param in model.parameters():
        param.requires_grad_(False)
    n = len(sources)
    d = sources[0].deltas[modules[0]].up.out_features
    shared: nn.Parameter | None = None
    if mode in ("uniform", "uniform++"):
        shared = nn.Parameter(torch.full((n, d if mode == "uniform" else 1), 1.0 / n))
    for name in modules:
        try:
            base = model.get_submodule(name)
        except AttributeError:
            raise ToolError(
                f"the model has no module {name!r} that the source adapters adapt",
                hint="combine adapters on the base model they were trained on",
            ) from None
        if sources[0].deltas[name].up.out_features != d:
            raise ToolError("source adapters modify states of different widths", hint="use one adapted width")
        omega = shared
        if mode in ("scalearn", "scalearn++"):
            omega = nn.Parameter(torch.full((n, d if mode == "scalearn" else 1), 1.0 / n))
        wrapper = ScaledCombination(base, [s.deltas[name] for s in sources], sources[0].insertion, mode, omega, d)
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, wrapper)
    trainable: dict[str, nn.Parameter] = {}
    seen: set[int] = set()
    for pname, param in model.named_parameters():  # named_parameters lists a shared ω once
        if param.requires_grad and id(param) not in seen:
            seen.add(id(param))
            trainable[pname] = param
    closed = combination_param_count(mode, len(modules), n, d)
    return CombineHandle(model=model, trainable=trainable, closed_form=closed, modules=modules)
