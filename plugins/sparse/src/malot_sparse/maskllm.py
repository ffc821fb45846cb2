"""MaskLLM (Fang et al., NeurIPS 2024): learnable semi-structured N:M masks by Gumbel-softmax over candidate masks.

The paper's method, implemented here:

* every M-group of a weight gets learnable logits ``π ∈ R^{|S|}`` over the ``|S| = C(M, N)`` candidate masks ``S``;
* training draws a differentiable mask per group with Gumbel-softmax, ``p_i = softmax((π_i + g_i)/τ)``,
  ``m̃ = Σ_i p_i S_i`` (eq. 3-4), with the logits scaled by ``κ`` and the temperature ``τ`` annealed;
* the weights stay frozen; the loss is the task loss of the masked model plus the sparse weight regulariser
  ``−λ‖W ⊙ m̃‖²`` that keeps large weights alive (eq. 6);
* the *mask prior* (section 3.3) initialises the logits from a one-shot mask ``M₀`` (magnitude or SparseGPT
  saliency): ``π_i = α · ⟨S_i, M₀⟩``, so a strong prior (large ``α``) returns the prior mask;
* the exported mask is the argmax candidate of every group: exactly N non-zeros per M-group.

PyTorch supplies the Gumbel noise and the autograd; the candidate enumeration, prior, regulariser, annealing and
export are this module's. ``torch.nn.utils.parametrize`` applies the soft mask to the frozen weight.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_sparse.core.nm import (
    candidate_masks,
    check_nm,
    group_weight,
    magnitude_nm_mask,
    mask_from_choice,
    prior_choice,
    saliency_nm_mask,
    sparsegpt_saliency,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "LearnNmMaskInput",
    "LearnNmMaskOutput",
    "MaskLLMResult",
    "learn_nm_mask",
    "learn_nm_masks",
    "make_mask_logits",
    "masked_fraction",
    "nm_linear_layers",
    "prior_masks",
    "record_linear_inputs",
    "sparsity_config",
]

Prior = Literal["magnitude", "sparsegpt", "none"]
LossFn = Callable[["nn.Module", int], "torch.Tensor"]
"""A training objective: called with the (soft-masked) model and the step number, returns a scalar loss."""


@functools.cache
def _mask_logits_class() -> type[nn.Module]:
    import torch
    from torch import nn

    class _MaskLogits(nn.Module):
        """Parametrization ``W ↦ W ⊙ m̃``: learnable logits over candidate masks for every M-group of one weight."""

        def __init__(self, shape: tuple[int, int], candidates: torch.Tensor, init: torch.Tensor) -> None:
            super().__init__()
            self.shape = shape
            self.register_buffer("candidates", candidates)
            self.logits = nn.Parameter(init.clone())
            self.tau = 1.0
            self.scale = 1.0

        def soft_mask(self) -> torch.Tensor:
            """The differentiable mask ``Σ_i p_i S_i`` with Gumbel-softmax weights ``p_i``."""
            cands: torch.Tensor = self.candidates  # type: ignore[assignment]
            probs = torch.nn.functional.gumbel_softmax(self.logits * self.scale, tau=self.tau, hard=False, dim=1)
            return (probs @ cands).reshape(self.shape)

        def forward(self, weight: torch.Tensor) -> torch.Tensor:
            return weight * self.soft_mask().to(weight.dtype)

    return _MaskLogits


def make_mask_logits(shape: tuple[int, int], candidates: torch.Tensor, init: torch.Tensor) -> nn.Module:
    """Build the parametrization module that holds one weight's candidate-mask logits."""
    return _mask_logits_class()(shape, candidates, init)


def nm_linear_layers(model: nn.Module, m: int, include: Sequence[str] | None = None) -> dict[str, nn.Linear]:
    """The ``nn.Linear`` layers to sparsify: input dimension divisible by ``m``, name matching ``include``.

    Output heads named ``lm_head`` are left dense, as in the paper and vLLM's 2:4 schemes.
    """
    from torch import nn

    layers: dict[str, nn.Linear] = {}
    for name, module in model.named_modules():
        if not isinstance(module, nn.Linear) or name.endswith("lm_head"):
            continue
        if module.in_features % m:
            continue
        if include is not None and not any(part in name for part in include):
            continue
        layers[name] = module
    return layers


def prior_masks(
    layers: Mapping[str, nn.Linear],
    n: int,
    m: int,
    prior: Prior,
    calibration: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """One-shot N:M masks per layer: ``magnitude`` (largest ``|w|``) or ``sparsegpt`` (OBS saliency).

    ``calibration`` maps a layer name to its recorded inputs (needed for ``sparsegpt``).
    """
    out: dict[str, torch.Tensor] = {}
    for name, layer in layers.items():
        weight = layer.weight.detach()
        if prior == "sparsegpt":
            if calibration is None or name not in calibration:
                raise ToolError(f"the sparsegpt prior needs calibration inputs for layer {name!r}")
            out[name] = saliency_nm_mask(sparsegpt_saliency(weight, calibration[name]), n, m)
        else:
            out[name] = magnitude_nm_mask(weight, n, m)
    return out


@dataclass
class MaskLLMResult:
    """Learned masks (boolean, exactly N per M-group), the prior masks and the loss curve."""

    masks: dict[str, torch.Tensor]
    priors: dict[str, torch.Tensor]
    losses: list[float] = field(default_factory=list)

    def changed_from_prior(self) -> float:
        """Share of mask entries that differ from the prior mask."""
        diff = sum(int((self.masks[k] != self.priors[k]).sum()) for k in self.masks)
        total = sum(int(v.numel()) for v in self.masks.values())
        return diff / max(total, 1)


def learn_nm_masks(
    model: nn.Module,
    loss_fn: LossFn,
    *,
    n: int = 2,
    m: int = 4,
    steps: int = 100,
    lr: float = 0.05,
    prior: Prior = "magnitude",
    prior_strength: float = 3.0,
    logit_scale: float = 1.0,
    tau: tuple[float, float] = (4.0, 0.05),
    weight_reg: float = 0.0,
    include: Sequence[str] | None = None,
    calibration: Mapping[str, torch.Tensor] | None = None,
    apply: bool = True,
    seed: int = 0,
) -> MaskLLMResult:
    """Learn N:M masks of ``model``'s linear layers with frozen weights (MaskLLM).

    ``prior_strength`` is α of the prior initialisation ``π = α⟨S_i, M₀⟩`` (0 or ``prior="none"``: uniform
    logits), ``logit_scale`` is κ, ``tau`` the (start, end) of the exponentially annealed temperature and
    ``weight_reg`` λ of the sparse weight regulariser. With ``apply`` the model's weights are multiplied by the
    learned masks on return; every weight is otherwise bit-identical to the input.
    """
    import torch
    from torch.nn.utils import parametrize

    if steps < 0:
        raise ToolError(f"steps must be >= 0, got {steps}")
    if not tau[0] > 0 or not tau[1] > 0:
        raise ToolError(f"temperatures must be positive, got {tau}")
    layers = nm_linear_layers(model, m, include)
    if not layers:
        raise ToolError(
            f"the model has no linear layer whose input dimension is a multiple of M={m}",
            hint="check include= or choose a smaller M",
        )
    for layer in layers.values():
        if not torch.isfinite(layer.weight).all():
            raise ToolError("the model's weights contain NaN or inf", hint="repair the checkpoint first")
    candidates = candidate_masks(n, m)
    priors = prior_masks(layers, n, m, "magnitude" if prior == "none" else prior, calibration)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    for p in model.parameters():
        p.requires_grad_(False)
    modules: dict[str, nn.Module] = {}
    for name, layer in layers.items():
        strength = 0.0 if prior == "none" else prior_strength
        init = strength * prior_choice(priors[name], candidates)
        module = make_mask_logits(tuple(layer.weight.shape), candidates, init)  # type: ignore[arg-type]
        module.scale = logit_scale  # type: ignore[assignment]
        parametrize.register_parametrization(layer, "weight", module)
        modules[name] = module
    losses: list[float] = []
    try:
        params = [p for mod in modules.values() for p in mod.parameters()]
        optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
        for step in range(steps):
            frac = step / max(steps - 1, 1)
            temperature = tau[0] * (tau[1] / tau[0]) ** frac
            for mod in modules.values():
                mod.tau = temperature
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model, step)
            if not torch.isfinite(loss):
                raise ToolError(f"the loss became {float(loss)} at step {step}", hint="lower lr or check the data")
            total = loss
            if weight_reg:
                kept = torch.stack([layers[k].weight.pow(2).sum() for k in layers]).sum()
                total = loss - weight_reg * kept
            total.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            losses.append(float(loss.detach()))
        masks: dict[str, torch.Tensor] = {}
        for name, mod in modules.items():
            choice = mod.logits.detach().argmax(dim=1)  # type: ignore[operator]
            masks[name] = mask_from_choice(choice, candidates, tuple(layers[name].weight.shape))
    finally:
        for layer in layers.values():
            parametrize.remove_parametrizations(layer, "weight", leave_parametrized=False)
        for name, p in model.named_parameters():
            p.requires_grad_(flags.get(name, True))
        torch.random.set_rng_state(generator_state)
    if apply:
        with torch.no_grad():
            for name, layer in layers.items():
                layer.weight.mul_(masks[name].to(layer.weight.dtype))
    for name, mask in masks.items():
        if not check_nm(mask, n, m):  # the argmax over candidates makes this impossible; kept as a guard
            raise ToolError(f"mask of {name!r} is not {n}:{m}", hint="this is a bug in learn_nm_masks")
    return MaskLLMResult(masks=masks, priors=priors, losses=losses)


def record_linear_inputs(
    model: nn.Module, layers: Mapping[str, nn.Linear], run: Callable[[], object], max_rows: int = 4096
) -> dict[str, torch.Tensor]:
    """Run ``run()`` once and record each layer's inputs (flattened to ``(rows, in)``, at most ``max_rows``)."""
    import torch

    recorded: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    handles = []
    for name, layer in layers.items():

        def hook(_mod: nn.Module, args: tuple[torch.Tensor, ...], _out: object, key: str = name) -> None:
            recorded[key].append(args[0].detach().reshape(-1, args[0].shape[-1]))

        handles.append(layer.register_forward_hook(hook))
    try:
        with torch.no_grad():
            run()
    finally:
        for handle in handles:
            handle.remove()
    return {k: torch.cat(v)[:max_rows] for k, v in recorded.items() if v}


def masked_fraction(masks: Mapping[str, torch.Tensor]) -> float:
    """Share of zeros over all masks (N:M gives exactly 1 − N/M)."""
    zeros = sum(int((~v).sum()) for v in masks.values())
    total = sum(int(v.numel()) for v in masks.values())
    return zeros / max(total, 1)


def groups_per_layer(masks: Mapping[str, torch.Tensor], m: int) -> dict[str, int]:
    """How many M-groups each mask has."""
    return {k: int(group_weight(v, m).shape[0]) for k, v in masks.items()}


def sparsity_config(masks: Mapping[str, torch.Tensor], n: int, m: int) -> dict[str, Any]:
    """The compressed-tensors ``sparsity_config`` describing dense-stored N:M weights (format ``dense``)."""
    from compressed_tensors.config import SparsityCompressionConfig  # type: ignore[import-untyped]

    zeros = sum(int((~v).sum()) for v in masks.values())
    config = SparsityCompressionConfig.load_from_registry(
        "dense",
        sparsity_structure=f"{n}:{m}",
        targets=sorted(masks),
        ignore=["lm_head"],
        global_sparsity=zeros / max(sum(int(v.numel()) for v in masks.values()), 1),
    )
    dumped: dict[str, Any] = config.model_dump()
    return dumped


_PAPER = "MaskLLM: Learnable Semi-Structured Sparsity for Large Language Models (Fang et al., NeurIPS 2024)"


class LearnNmMaskInput(BaseModel):
    """Arguments of the ``learn_nm_mask`` tool."""

    model: str = Field(description="Hugging Face causal-LM folder whose linear layers get N:M masks")
    data: str = Field(description="calibration/training texts: .txt (one a line) or .jsonl ('text' field)")
    out: str = Field(description="folder for the masked checkpoint (safetensors, loads like the input model)")
    n: int = Field(default=2, gt=0, description="non-zeros kept per group")
    m: int = Field(default=4, gt=0, le=16, description="group size along the input dimension")
    steps: int = Field(default=50, ge=0, description="mask-learning steps (0 returns the prior mask)")
    lr: float = Field(default=0.1, gt=0, description="learning rate of the mask logits")
    prior: Prior = Field(default="magnitude", description="one-shot prior mask: magnitude, sparsegpt or none")
    prior_strength: float = Field(default=3.0, ge=0, description="α of the prior initialisation π = α⟨S_i, M₀⟩")
    logit_scale: float = Field(default=1.0, gt=0, description="κ, the scale of the logits in the Gumbel-softmax")
    tau_start: float = Field(default=4.0, gt=0, description="Gumbel-softmax temperature at the first step")
    tau_end: float = Field(default=0.05, gt=0, description="temperature at the last step (exponential annealing)")
    weight_reg: float = Field(default=0.0, ge=0, description="λ of the sparse weight regulariser −λ‖W ⊙ m̃‖²")
    batch_size: int = Field(default=8, gt=0)
    max_length: int = Field(default=64, gt=1)
    include: list[str] | None = Field(default=None, description="only linear layers whose name contains one of these")
    seed: int = 0


class LearnNmMaskOutput(BaseModel):
    """Result of the ``learn_nm_mask`` tool."""

    out: str
    layers: int
    groups: int
    candidates: int
    sparsity: float = Field(description="share of zeros over the masked layers (exactly 1 − N/M)")
    exactly_n_per_group: bool
    changed_from_prior: float = Field(description="share of mask entries that differ from the prior mask")
    loss_first: float | None
    loss_last: float | None
    sparsity_config_file: str


@tool(
    name="learn_nm_mask",
    family="sparse",
    paper=_PAPER,
    tags=(
        "sparse",
        "pruning",
        "2:4",
        "n:m",
        "compression",
        "inference",
        "post-training",
        "unlabelled-target",
        "needs:causal-lm",
        "needs:texts",
    ),
    heavy=True,
)
def learn_nm_mask(args: LearnNmMaskInput) -> LearnNmMaskOutput:
    """MaskLLM: learn N:M (default 2:4) masks of a causal LM's linear layers with frozen weights; export the masked
    checkpoint.

    Logits over the C(M,N) candidate masks of every M-group are initialised from a magnitude or SparseGPT prior and
    trained with Gumbel-softmax on the language-model loss of the given texts; the argmax candidate of each group is
    the exported mask (exactly N non-zeros per group). The output folder is a dense safetensors checkpoint with the
    masked weights (vLLM and transformers load it as is) plus ``sparsity_config.json`` in compressed-tensors'
    format (structure N:M, targets, ignore).
    """
    import json

    import torch

    from malot_sparse.core.causal_lm import lm_batches, lm_loss, load_lm, load_text_lines

    if args.n > args.m:
        raise ToolError(f"n={args.n} is larger than m={args.m}", hint="N:M keeps N of every M weights; use n <= m")
    torch.manual_seed(args.seed)
    model, tokenizer = load_lm(args.model)
    texts = load_text_lines(args.data)
    batches = lm_batches(tokenizer, texts, args.batch_size, args.max_length, args.seed)
    calibration = None
    if args.prior == "sparsegpt":
        layers = nm_linear_layers(model, args.m, args.include)
        ids, mask = batches(-1)
        calibration = record_linear_inputs(model, layers, lambda: model(input_ids=ids, attention_mask=mask))

    def loss_fn(net: nn.Module, step: int) -> torch.Tensor:
        ids, mask = batches(step)
        return lm_loss(net, ids, mask)

    result = learn_nm_masks(
        model,
        loss_fn,
        n=args.n,
        m=args.m,
        steps=args.steps,
        lr=args.lr,
        prior=args.prior,
        prior_strength=args.prior_strength,
        logit_scale=args.logit_scale,
        tau=(args.tau_start, args.tau_end),
        weight_reg=args.weight_reg,
        include=args.include,
        calibration=calibration,
        apply=True,
        seed=args.seed,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))  # type: ignore[operator]
    tokenizer.save_pretrained(str(out))
    config = sparsity_config(result.masks, args.n, args.m)
    side = out / "sparsity_config.json"
    side.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return LearnNmMaskOutput(
        out=str(out),
        layers=len(result.masks),
        groups=sum(groups_per_layer(result.masks, args.m).values()),
        candidates=int(candidate_masks(args.n, args.m).shape[0]),
        sparsity=masked_fraction(result.masks),
        exactly_n_per_group=all(check_nm(v, args.n, args.m) for v in result.masks.values()),
        changed_from_prior=result.changed_from_prior(),
        loss_first=result.losses[0] if result.losses else None,
        loss_last=result.losses[-1] if result.losses else None,
        sparsity_config_file=str(side),
    )
