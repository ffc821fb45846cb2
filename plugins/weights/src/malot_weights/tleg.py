"""TLEG: Transformer as Linear Expansion of Learngene (Xia et al., AAAI 2024).

Weights of a well-trained Transformer vary roughly linearly with depth. TLEG therefore keeps two "learngene" tensors
per layer parameter, ``θ_A`` and ``θ_B``, and builds layer ``l`` of a depth-``L`` model as

    θ_l = θ_A + (l − 1)/(L − 1) · θ_B,        l = 1, …, L

so the first layer is ``θ_A`` and the last ``θ_A + θ_B``. Stage 1 trains the learngene inside an auxiliary model
whose layers are tied by this rule (by soft distillation from a teacher); stage 2 expands the learngene to models
of any depth, which are then fine-tuned without the constraint.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_weights.tool_io import load_weights, save_weights

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "TlegExpandInput",
    "TlegExpandOutput",
    "build_expansion_stack",
    "distill_learngene",
    "expand_learngene",
    "expansion_coefficient",
    "fit_learngene",
    "tleg_expand",
]

Gene = dict[str, "torch.Tensor"]


def expansion_coefficient(layer: int, depth: int) -> float:
    """The factor ``(l − 1)/(L − 1)`` of ``θ_B`` for 1-based ``layer`` in a model of ``depth`` layers (0 if L = 1)."""
    if depth < 1 or not 1 <= layer <= depth:
        raise ToolError(f"layer {layer} is not in 1..{depth}")
    return 0.0 if depth == 1 else (layer - 1) / (depth - 1)


def expand_learngene(gene_a: Mapping[str, torch.Tensor], gene_b: Mapping[str, torch.Tensor], depth: int) -> list[Gene]:
    """The ``depth`` layers ``θ_A + (l − 1)/(L − 1)·θ_B`` (one state dict per layer, first layer first)."""
    if set(gene_a) != set(gene_b):
        raise ToolError("learngene parts A and B name different parameters", hint="both must cover the same layer")
    for name in gene_a:
        if gene_a[name].shape != gene_b[name].shape:
            raise ToolError(f"learngene {name!r}: A has shape {tuple(gene_a[name].shape)}, B {gene_b[name].shape}")
    layers: list[Gene] = []
    for layer in range(1, depth + 1):
        c = expansion_coefficient(layer, depth)
        layers.append({n: gene_a[n].detach().clone() if c == 0 else gene_a[n] + c * gene_b[n] for n in gene_a})
    return layers


def fit_learngene(layers: Sequence[Mapping[str, torch.Tensor]]) -> tuple[Gene, Gene]:
    """Least-squares learngene of existing layers: per entry, the line ``θ_A + t·θ_B`` closest to the layers.

    ``t_l = (l − 1)/(L − 1)``; with two layers this reproduces them exactly. It is a training-free alternative to
    the paper's distillation, useful to seed the auxiliary model from a trained teacher.
    """
    import torch

    depth = len(layers)
    if depth < 2:
        raise ToolError("fitting a learngene needs at least two layers")
    t = torch.tensor([expansion_coefficient(i, depth) for i in range(1, depth + 1)], dtype=torch.float64)
    t_mean = t.mean()
    t_var = ((t - t_mean) ** 2).sum()
    gene_a: Gene = {}
    gene_b: Gene = {}
    for name in layers[0]:
        stack = torch.stack([layer[name].detach().to(torch.float64) for layer in layers])
        mean = stack.mean(0)
        weights = (t - t_mean).view(-1, *([1] * (stack.dim() - 1)))
        slope = (weights * (stack - mean)).sum(0) / t_var
        dtype = layers[0][name].dtype
        gene_b[name] = slope.to(dtype)
        gene_a[name] = (mean - t_mean * slope).to(dtype)
    return gene_a, gene_b


def build_expansion_stack(template: nn.Module, depth: int, *, b_init_scale: float = 0.0) -> nn.Module:
    """The auxiliary stack: ``depth`` copies of ``template`` whose weights are ``θ_A + c_l·θ_B`` (A, B trainable).

    ``θ_A`` starts as the template's weights, ``θ_B`` as zeros (or noise of scale ``b_init_scale``). Its
    ``forward(x)`` runs the layers in order; its ``genes()`` returns the current ``(θ_A, θ_B)``.
    """
    import torch
    from torch import nn
    from torch.func import functional_call

    class _Stack(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.template = template
            for p in self.template.parameters():
                p.requires_grad_(False)
            self.names = [n for n, _ in template.named_parameters()]
            self.gene_a = nn.ParameterList([nn.Parameter(p.detach().clone()) for _, p in template.named_parameters()])
            self.gene_b = nn.ParameterList(
                [nn.Parameter(torch.randn_like(p) * b_init_scale) for _, p in template.named_parameters()]
            )
            self.depth = depth

        def genes(self) -> tuple[Gene, Gene]:
            a = {n: p.detach().clone() for n, p in zip(self.names, self.gene_a, strict=True)}
            b = {n: p.detach().clone() for n, p in zip(self.names, self.gene_b, strict=True)}
            return a, b

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for layer in range(1, self.depth + 1):
                c = expansion_coefficient(layer, self.depth)
                params = {n: a + c * b for n, a, b in zip(self.names, self.gene_a, self.gene_b, strict=True)}
                x = functional_call(self.template, params, (x,))
            return x

    return _Stack()


def distill_learngene(
    student: nn.Module,
    teacher: nn.Module,
    inputs: Callable[[int], torch.Tensor],
    *,
    steps: int,
    lr: float,
    temperature: float = 1.0,
    labels: Callable[[int], torch.Tensor] | None = None,
    alpha: float = 0.5,
) -> list[float]:
    """Stage 1 of TLEG: train the auxiliary model (learngene and the untied parts) by soft distillation.

    ``inputs(step)`` gives a batch; the loss is ``τ²·KL(teacher/τ ‖ student/τ)``, mixed ``alpha : 1 − alpha`` with
    the cross-entropy on ``labels(step)`` when labels are given (the paper's soft-distillation objective).
    """
    import torch
    import torch.nn.functional as F

    teacher.eval()
    optimizer = torch.optim.AdamW([p for p in student.parameters() if p.requires_grad], lr=lr)
    losses: list[float] = []
    for step in range(steps):
        x = inputs(step)
        with torch.no_grad():
            target = F.softmax(teacher(x) / temperature, dim=-1)
        logits = student(x)
        kd = F.kl_div(F.log_softmax(logits / temperature, dim=-1), target, reduction="batchmean") * temperature**2
        loss = alpha * kd + (1 - alpha) * F.cross_entropy(logits, labels(step)) if labels is not None else kd
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


_PAPER = "Transformer as Linear Expansion of Learngene (Xia et al., AAAI 2024)"


class TlegExpandInput(BaseModel):
    """Arguments of the ``tleg_expand`` tool."""

    depth: int = Field(ge=1, description="number of layers of the descendant model")
    out: str = Field(description="output .safetensors file")
    layer_prefix: str = Field(
        default="model.layers.{i}.", description="how layer i's parameter names start; '{i}' is the layer index"
    )
    first_index: int = Field(default=0, ge=0, description="index of the first layer in the names (0 for HF models)")
    learngene: str | None = Field(
        default=None, description="safetensors file with 'A.<param>' and 'B.<param>' tensors (the learngene)"
    )
    fit_from: str | None = Field(
        default=None, description="instead of a learngene file: fit one by least squares to this model's layers"
    )
    fit_depth: int | None = Field(default=None, ge=2, description="number of layers of the fit_from model")
    copy_rest_from: str | None = Field(
        default=None, description="copy the non-layer weights (embeddings, head, norms) from this model"
    )


class TlegExpandOutput(BaseModel):
    """Result of the ``tleg_expand`` tool."""

    out: str
    depth: int
    layer_parameters: int
    copied_parameters: int
    learngene_file: str | None


def _layer_names(names: Sequence[str], prefix: str, index: int) -> dict[str, str]:
    start = prefix.format(i=index)
    return {n[len(start) :]: n for n in names if n.startswith(start)}


@tool(name="tleg_expand", family="weights", paper=_PAPER, tags=("learngene", "initialisation", "depth"))
def tleg_expand(args: TlegExpandInput) -> TlegExpandOutput:
    """Initialise a model of any depth by linearly expanding a learngene: ``θ_l = θ_A + (l−1)/(L−1)·θ_B``.

    The learngene comes from a file (``A.*``/``B.*``) or is fitted to an existing model's layers; the non-layer
    weights can be copied from a model. Writes the descendant's weights as safetensors.
    """
    if "{i}" not in args.layer_prefix:
        raise ToolError("layer_prefix must contain '{i}'", hint="e.g. 'model.layers.{i}.'")
    learngene_file: str | None = None
    if args.learngene is not None:
        tensors = load_weights(args.learngene)
        gene_a = {k[2:]: v for k, v in tensors.items() if k.startswith("A.")}
        gene_b = {k[2:]: v for k, v in tensors.items() if k.startswith("B.")}
        if not gene_a:
            raise ToolError(f"{args.learngene} has no 'A.<param>' tensors", hint="save the learngene as A.* and B.*")
        learngene_file = args.learngene
    elif args.fit_from is not None:
        source = load_weights(args.fit_from)
        depth = args.fit_depth
        if depth is None:
            depth = 0
            while _layer_names(list(source), args.layer_prefix, args.first_index + depth):
                depth += 1
        layers = []
        for i in range(depth):
            names = _layer_names(list(source), args.layer_prefix, args.first_index + i)
            if not names:
                raise ToolError(f"{args.fit_from} has no layer {args.first_index + i} under {args.layer_prefix!r}")
            layers.append({short: source[full] for short, full in names.items()})
        gene_a, gene_b = fit_learngene(layers)
        learngene_file = str(
            save_weights(
                {**{f"A.{k}": v for k, v in gene_a.items()}, **{f"B.{k}": v for k, v in gene_b.items()}},
                f"{args.out}.learngene.safetensors",
            )
        )
    else:
        raise ToolError("give either 'learngene' or 'fit_from'")
    out: dict[str, Any] = {}
    for index, layer in enumerate(expand_learngene(gene_a, gene_b, args.depth)):
        prefix = args.layer_prefix.format(i=args.first_index + index)
        out.update({prefix + name: tensor for name, tensor in layer.items()})
    copied = 0
    if args.copy_rest_from is not None:
        marker = args.layer_prefix.split("{i}")[0]
        for name, tensor in load_weights(args.copy_rest_from).items():
            if not name.startswith(marker):
                out[name] = tensor
                copied += 1
    path = save_weights(out, args.out)
    return TlegExpandOutput(
        out=str(path),
        depth=args.depth,
        layer_parameters=len(out) - copied,
        copied_parameters=copied,
        learngene_file=learngene_file,
    )
