"""What the memory-efficient side methods (LST, UniPT, SHERL) share: freezing, training with a gradient probe,
measuring the memory a training step holds, and the causal-LM tool driver.

Each method is an ``nn.Module`` with ``forward(ids) -> logits`` built around a frozen
:class:`~malot_peft.core.backbone.LayeredBackbone`; only the module's own parameters train.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from malot.errors import ToolError
from malot_peft.core.backbone import GradientProbe, LayeredBackbone, snapshot, unchanged
from malot_peft.core.train import train_params

__all__ = [
    "SideModule",
    "SideRun",
    "SideToolResult",
    "check_side_args",
    "freeze",
    "run_side_tool",
    "save_side",
    "saved_tensor_bytes",
    "side_trainable",
    "train_side",
    "training_memory_bytes",
]


class SideModule(nn.Module):
    """Base of the side methods: holds the frozen backbone outside the module's own parameter list."""

    def __init__(self, backbone: LayeredBackbone) -> None:
        super().__init__()
        freeze(backbone.module)
        object.__setattr__(self, "backbone", backbone)  # not a submodule: its weights are not ours to train or save
        self.backbone: LayeredBackbone

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Logits for token ids ``(B, n)``."""
        raise NotImplementedError


def freeze(module: nn.Module) -> None:
    """Stop every parameter of ``module`` from requiring a gradient."""
    for param in module.parameters():
        param.requires_grad_(False)


def side_trainable(module: nn.Module) -> list[nn.Parameter]:
    """The side module's trainable parameters."""
    return [p for p in module.parameters() if p.requires_grad]


@dataclass
class SideRun:
    """The outcome of :func:`train_side`."""

    losses: list[float]
    backbone_bit_identical: bool
    no_backbone_gradient: bool
    probe: GradientProbe


def train_side(
    side: SideModule, loss_fn: Callable[[SideModule, int], torch.Tensor], *, steps: int, lr: float
) -> SideRun:
    """Train ``side``'s own parameters, with every backbone layer and parameter watched by a gradient probe.

    To make the probe meaningful the backbone layers' parameters are switched to ``requires_grad=True`` while training
    (as a careless user might leave them): a method that backpropagated into the backbone would then fire the
    parameter hooks. They are frozen again afterwards. The optimizer only ever holds the side parameters.
    """
    backbone = side.backbone
    before = snapshot(backbone.module)
    params = side_trainable(side)
    late = set(getattr(side, "frozen_route_layers", ()))  # SHERL's late layers: autograd on, weights frozen
    watched = [i for i in range(backbone.num_layers) if i not in late]
    for i in watched:
        for param in backbone.layer_module(i).parameters():
            param.requires_grad_(True)
    layers = {f"layer{i}": backbone.layer_module(i) for i in watched}
    probe = GradientProbe()
    try:
        with probe.watch(backbone.module, layers):
            losses = train_params(params, lambda step: loss_fn(side, step), steps=steps, lr=lr)
    finally:
        freeze(backbone.module)
    grads_none = all(p.grad is None for p in backbone.module.parameters())
    return SideRun(
        losses=losses,
        backbone_bit_identical=unchanged(backbone.module, before),
        no_backbone_gradient=probe.clean and grads_none,
        probe=probe,
    )


def saved_tensor_bytes(step: Callable[[], torch.Tensor]) -> int:
    """Bytes of the distinct tensors autograd saves for backward while ``step()`` computes a loss.

    This is the activation memory a training step must hold until ``backward``; tensors sharing storage (views,
    parameters saved by several ops) are counted once.
    """
    seen: dict[tuple[int, int], int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        seen[(storage.data_ptr(), storage.nbytes())] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = step()
    del loss
    return sum(seen.values())


def training_memory_bytes(step: Callable[[], torch.Tensor], trainable: list[nn.Parameter]) -> dict[str, int]:
    """Memory a training step holds: saved activations + gradients + Adam state (2 moments) of ``trainable``.

    Parameters that receive no gradient are not counted (they are the frozen weights every method shares).
    Saved parameter tensors are excluded from the activation count.
    """
    param_storages = {(p.untyped_storage().data_ptr(), p.untyped_storage().nbytes()) for p in trainable}
    seen: dict[tuple[int, int], int] = {}
    frozen_ptrs: set[int] = set()

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        key = (storage.data_ptr(), storage.nbytes())
        if isinstance(t, nn.Parameter) or key in param_storages:
            frozen_ptrs.add(storage.data_ptr())
        else:
            seen[key] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = step()
    del loss
    activations = sum(v for (ptr, _), v in seen.items() if ptr not in frozen_ptrs)
    grads = sum(int(p.numel()) * p.element_size() for p in trainable)
    return {"activations": activations, "gradients": grads, "optimizer": 2 * grads, "total": activations + 3 * grads}


def check_side_args(backbone: LayeredBackbone, reduction: int) -> int:
    """The side width ``d / reduction``; a clear error when it is not a positive whole number."""
    if reduction <= 0 or backbone.hidden_size % reduction:
        raise ToolError(
            f"reduction {reduction} must divide the hidden size {backbone.hidden_size}",
            hint="pick a divisor of the hidden size (e.g. 4 or 8)",
        )
    return backbone.hidden_size // reduction


def save_side(side: nn.Module, path: str | Path, meta: dict[str, Any]) -> Path:
    """Write the side module's own tensors (never the backbone's) and its settings to one safetensors file."""
    import json

    from safetensors.torch import save_file

    out = Path(path)
    if out.suffix != ".safetensors":
        raise ToolError(f"out={str(path)!r} must end in .safetensors", hint="e.g. --out side.safetensors")
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.detach().contiguous() for k, v in side.state_dict().items()}, str(out), {"settings": json.dumps(meta)}
    )
    return out


@dataclass
class SideToolResult:
    """What :func:`run_side_tool` hands back to a tool function."""

    side: SideModule
    run: SideRun
    path: Path
    trainable: int
    backbone_params: int
    side_bytes: int
    full_bytes: int


def run_side_tool(args: Any, factory: Callable[[LayeredBackbone], SideModule], meta: dict[str, Any]) -> SideToolResult:
    """Drive a side method on a causal LM: load, build, train with the probe, measure memory, save.

    ``args`` carries ``model``, ``data``, ``out``, ``steps``, ``lr``, ``batch_size``, ``max_length`` and ``seed``.
    Memory: the autograd-saved activation bytes of one batch, for the side method and for full fine-tuning.
    """
    from malot_peft.core.backbone import layered
    from malot_peft.core.lm import load_causal_lm, load_texts, load_tokenizer, next_token_loss, sample_batch

    if Path(args.out).suffix != ".safetensors":
        raise ToolError(f"out={args.out!r} must end in .safetensors", hint="e.g. --out side.safetensors")
    torch.manual_seed(args.seed)
    texts = load_texts(args.data)
    model = load_causal_lm(args.model)
    tokenizer = load_tokenizer(args.model)
    backbone = layered(model)
    side = factory(backbone)
    order = torch.Generator().manual_seed(args.seed)

    def loss_fn(net: SideModule, step: int) -> torch.Tensor:
        ids, mask = sample_batch(tokenizer, texts, args.batch_size, args.max_length, order)
        return next_token_loss(net(ids), ids, mask)

    run = train_side(side, loss_fn, steps=args.steps, lr=args.lr)
    probe_ids, probe_mask = sample_batch(tokenizer, texts, args.batch_size, args.max_length, order)
    side_bytes = training_memory_bytes(
        lambda: next_token_loss(side(probe_ids), probe_ids, probe_mask), side_trainable(side)
    )
    for param in model.parameters():
        param.requires_grad_(True)
    full = training_memory_bytes(
        lambda: next_token_loss(model(input_ids=probe_ids).logits, probe_ids, probe_mask), list(model.parameters())
    )
    freeze(model)
    path = save_side(side, args.out, {**meta, "base_model": str(Path(args.model).resolve())})
    return SideToolResult(
        side=side,
        run=run,
        path=path,
        trainable=sum(int(p.numel()) for p in side_trainable(side)),
        backbone_params=sum(int(p.numel()) for p in model.parameters()),
        side_bytes=side_bytes["activations"],
        full_bytes=full["activations"],
    )
