"""Apply a unified-view PEFT configuration to a model, count its parameters in closed form, save and load it.

LoRA and prefix tuning go through the ``peft`` library (``LoraConfig``/``PrefixTuningConfig``) unless the unified
backend is asked for; bottleneck adapters (sequential, parallel, scaled parallel) are our :class:`UnifiedDelta`
wrappers, since ``peft`` has no bottleneck adapter. Prefix tuning on our :class:`TinyTransformer` uses its own
prefix keys/values (the same ``[P_k; K]`` concatenation ``peft`` feeds a Hugging Face model as past key/values).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, Field, model_validator
from torch import nn

from malot.errors import ToolError
from malot_peft.core.tiny import TinyTransformer
from malot_peft.core.unified import (
    ActivationName,
    DeltaWrapped,
    Insertion,
    delta_param_count,
    insert_delta,
    make_delta,
    prefix_param_count,
)

__all__ = ["PeftHandle", "PeftSpec", "apply_peft", "load_adapter", "save_adapter"]

Form = Literal["lora", "adapter", "parallel_adapter", "prefix", "mam", "custom"]
_FORMAT = "malot-peft-adapter"


class PeftSpec(BaseModel):
    """One point of the unified design space (He et al., 2022, Table 1) plus the paper's named presets.

    ``form`` presets: ``lora`` (parallel, identity ``f``, at the attention query/value maps, ``s = α/r``),
    ``adapter`` (sequential ReLU bottleneck after the FFN: Pfeiffer placement), ``parallel_adapter`` (parallel ReLU
    bottleneck beside the FFN, scale ``s``; the paper's *scaled PA* uses ``s = 4``), ``prefix`` (``prefix_len``
    prefix vectors per layer: the gated parallel form at attention), ``mam`` (prefix at attention + scaled parallel
    adapter at the FFN) and ``custom`` (any ``insertion``/``fn``/``targets``/``scale``).
    """

    form: Form = "lora"
    r: int = Field(default=8, gt=0, description="bottleneck size of each modification")
    scale: float | None = Field(default=None, description="s (default: 1; 4 for parallel_adapter and mam)")
    fn: ActivationName | None = Field(default=None, description="f (custom form only; presets fix it)")
    insertion: Insertion | None = Field(default=None, description="parallel or sequential (custom form only)")
    targets: list[str] | None = Field(default=None, description="module-name suffixes to modify (default by form)")
    prefix_len: int = Field(default=8, gt=0, description="prefix vectors per layer (prefix and mam)")
    bias: bool = Field(default=True, description="biases in adapter bottlenecks (LoRA has none)")
    backend: Literal["peft", "unified"] = Field(
        default="peft", description="LoRA/prefix through the peft library, or our unified-form modules"
    )

    @model_validator(mode="after")
    def _check(self) -> PeftSpec:
        if self.form != "custom" and (self.fn is not None or self.insertion is not None):
            raise ValueError(f"fn and insertion are fixed by form {self.form!r}; use form='custom' to set them")
        if self.form == "custom" and (self.fn is None or self.insertion is None or not self.targets):
            raise ValueError("form='custom' needs fn, insertion and targets")
        return self

    def resolved_scale(self) -> float:
        """The scale ``s`` this spec uses."""
        if self.scale is not None:
            return self.scale
        return 4.0 if self.form in ("parallel_adapter", "mam") else 1.0


@dataclass
class PeftHandle:
    """A model with PEFT modules applied: what trains, what must stay frozen, and the closed-form count."""

    model: nn.Module
    spec: PeftSpec
    trainable: dict[str, nn.Parameter]
    backbone: dict[str, nn.Parameter]
    closed_form: int
    wrapped: list[str] = field(default_factory=list)

    @property
    def trainable_count(self) -> int:
        """Number of trainable scalars, counted from the parameters themselves."""
        return sum(int(p.numel()) for p in self.trainable.values())

    def backbone_snapshot(self) -> dict[str, torch.Tensor]:
        """Copies of the backbone parameters (to check they stay bit-identical)."""
        return {n: p.detach().clone() for n, p in self.backbone.items()}

    def backbone_unchanged(self, before: dict[str, torch.Tensor]) -> bool:
        """Whether every backbone parameter equals ``before`` bit for bit."""
        return all(torch.equal(p.detach(), before[n]) for n, p in self.backbone.items())


def _is_tiny(model: nn.Module) -> bool:
    return isinstance(model, TinyTransformer)


def _default_targets(model: nn.Module, where: Literal["attn_qv", "ffn"]) -> list[str]:
    names = {n for n, _ in model.named_modules()}
    options = {
        "attn_qv": (["attn.q", "attn.v"], ["q_proj", "v_proj"], ["c_attn"]),
        "ffn": (["ffn"], ["mlp"]),
    }[where]
    for suffixes in options:
        if all(any(n.endswith("." + s) or n == s for n in names) for s in suffixes):
            return list(suffixes)
    raise ToolError(
        f"cannot find default {where} modules in {type(model).__name__}", hint="pass targets=[...] explicitly"
    )


def _matches(name: str, targets: list[str]) -> bool:
    return any(name == t or name.endswith("." + t) for t in targets)


def _dims(module: nn.Module, model: nn.Module) -> tuple[int, int]:
    if isinstance(module, nn.Linear):
        return int(module.in_features), int(module.out_features)
    hidden = _hidden_size(model)
    return hidden, hidden


def _hidden_size(model: nn.Module) -> int:
    if isinstance(model, TinyTransformer):
        return model.hidden_size
    config = getattr(model, "config", None)
    size = getattr(config, "hidden_size", None)
    if not isinstance(size, int):
        raise ToolError("cannot tell the model's hidden size", hint="target nn.Linear modules instead")
    return size


def _wrap(
    model: nn.Module, targets: list[str], insertion: Insertion, fn: str, r: int, scale: float, bias: bool
) -> tuple[list[str], int]:
    """Wrap every module matching ``targets``; returns the wrapped names and the closed-form parameter count."""
    found = [(n, m) for n, m in model.named_modules() if n and _matches(n, targets) and not isinstance(m, DeltaWrapped)]
    if not found:
        raise ToolError(f"no module of the model matches targets {targets}", hint="list module names with print(model)")
    total = 0
    for name, module in found:
        d_in, d_out = _dims(module, model)
        source = d_in if insertion == "parallel" else d_out
        delta = make_delta(source, d_out, r, fn=fn, scale=scale, bias=bias)
        total += delta_param_count(source, d_out, r, bias)
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, insert_delta(module, delta, insertion))
    return [n for n, _ in found], total


def _prefix_tiny(model: TinyTransformer, length: int) -> int:
    for block in model.blocks:
        attention: Any = block.attn
        attention.add_prefix(length)
    return prefix_param_count(length, len(model.blocks), model.hidden_size)


def _prefix_hf(model: nn.Module, length: int) -> tuple[nn.Module, int]:
    from peft import PrefixTuningConfig, TaskType, get_peft_model

    config: Any = model.config
    layers = int(config.num_hidden_layers)
    heads = int(config.num_attention_heads)
    kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // heads)
    peft_config = PrefixTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=length)
    wrapped: nn.Module = get_peft_model(model, peft_config)
    return wrapped, prefix_param_count(length, layers, kv_heads * head_dim)


def _lora_peft(model: nn.Module, targets: list[str], r: int, scale: float) -> tuple[nn.Module, int]:
    from peft import LoraConfig, get_peft_model

    found = [(n, m) for n, m in model.named_modules() if n and _matches(n, targets)]
    if not found or not all(isinstance(m, nn.Linear) for _, m in found):
        raise ToolError(f"LoRA targets {targets} must name nn.Linear modules", hint="e.g. q_proj, v_proj")
    closed = sum(r * (m.in_features + m.out_features) for _, m in found)
    config = LoraConfig(r=r, lora_alpha=r, target_modules=targets, lora_dropout=0.0, bias="none")
    config.lora_alpha = scale * r  # type: ignore[assignment]  # peft scales by lora_alpha / r; any real s works
    wrapped: nn.Module = get_peft_model(model, config)
    return wrapped, int(closed)


def apply_peft(model: nn.Module, spec: PeftSpec) -> PeftHandle:
    """Freeze ``model`` and add the modules ``spec`` describes; returns the (possibly ``peft``-wrapped) model.

    The backbone parameters are the same tensor objects before and after (nothing is copied), so
    :meth:`PeftHandle.backbone_unchanged` compares the very weights the forward pass uses.
    """
    backbone = dict(model.named_parameters())
    for param in backbone.values():
        param.requires_grad_(False)
    scale = spec.resolved_scale()
    closed = 0
    wrapped: list[str] = []
    out = model
    form = spec.form
    if form == "lora":
        targets = spec.targets or _default_targets(model, "attn_qv")
        if spec.backend == "peft":
            out, closed = _lora_peft(model, targets, spec.r, scale)
            wrapped = targets
        else:
            wrapped, closed = _wrap(model, targets, "parallel", "identity", spec.r, scale, bias=False)
    elif form in ("adapter", "parallel_adapter", "custom"):
        where = spec.targets or _default_targets(model, "ffn")
        insertion: Insertion = "sequential" if form == "adapter" else "parallel"
        fn = "relu"
        if form == "custom":
            assert spec.insertion is not None and spec.fn is not None  # checked by the validator
            insertion, fn = spec.insertion, spec.fn
        wrapped, closed = _wrap(model, where, insertion, fn, spec.r, scale, spec.bias)
    if form in ("prefix", "mam"):
        if form == "mam":
            where = spec.targets or _default_targets(model, "ffn")
            wrapped, closed = _wrap(model, where, "parallel", "relu", spec.r, scale, spec.bias)
        if _is_tiny(model):
            closed += _prefix_tiny(model, spec.prefix_len)  # type: ignore[arg-type]
        else:
            out, count = _prefix_hf(model, spec.prefix_len)
            closed += count
    backbone_ids = {id(p) for p in backbone.values()}
    trainable: dict[str, nn.Parameter] = {}
    for name, param in out.named_parameters():
        if id(param) in backbone_ids:
            param.requires_grad_(False)
        else:
            param.requires_grad_(True)
            trainable[name] = param
    return PeftHandle(model=out, spec=spec, trainable=trainable, backbone=backbone, closed_form=closed, wrapped=wrapped)


def save_adapter(handle: PeftHandle, path: str | Path, extra: dict[str, str] | None = None) -> Path:
    """Write the trainable tensors and the spec to one safetensors file."""
    from safetensors.torch import save_file

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tensors = {n: p.detach().contiguous().clone() for n, p in handle.trainable.items()}
    meta = {"format": _FORMAT, "spec": handle.spec.model_dump_json(), **(extra or {})}
    save_file(tensors, str(out), metadata=meta)
    return out


def load_adapter(model: nn.Module, path: str | Path) -> PeftHandle:
    """Apply the spec saved in ``path`` to ``model`` and load its trained tensors (names must match exactly)."""
    from safetensors import safe_open

    file = Path(path)
    if not file.is_file():
        raise ToolError(f"adapter file {file} does not exist", hint="create one with make_peft")
    with safe_open(str(file), framework="pt") as handle_file:
        meta = handle_file.metadata() or {}
        if meta.get("format") != _FORMAT:
            raise ToolError(f"{file} is not an adapter written by make_peft", hint="create one with make_peft")
        tensors = {k: handle_file.get_tensor(k) for k in handle_file.keys()}  # noqa: SIM118
    bad = [name for name, tensor in tensors.items() if not bool(torch.isfinite(tensor).all())]
    if bad:
        raise ToolError(f"adapter {file} holds NaN or infinite values in {bad[:3]}", hint="retrain the adapter")
    spec = PeftSpec.model_validate(json.loads(meta["spec"]))
    handle = apply_peft(model, spec)
    missing = set(handle.trainable) ^ set(tensors)
    if missing:
        raise ToolError(
            f"adapter {file} does not fit this model (mismatched tensors: {sorted(missing)[:4]})",
            hint="load the adapter into the base model it was trained on",
        )
    with torch.no_grad():
        for name, param in handle.trainable.items():
            if param.shape != tensors[name].shape:
                raise ToolError(
                    f"adapter tensor {name!r} has shape {tuple(tensors[name].shape)}, model expects "
                    f"{tuple(param.shape)}",
                    hint="load the adapter into the model it was trained on",
                )
            param.copy_(tensors[name])
    return handle
