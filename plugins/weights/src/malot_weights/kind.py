"""KIND: Knowledge Integration and Diversion for training decomposable models (Xie et al., ICML 2025).

Every weight matrix is held in SVD form, ``W = U·diag(σ)·Vᵀ``, one *component* per singular triple. The
components split into **learngenes** (always on: class-agnostic knowledge) and **tailors** (class-specific: each
tailor belongs to one class, and a *class gate* switches on only the tailors of the sample's class). Training under
this gate diverts common knowledge into the learngenes; a new task reuses the learngenes with fresh tailors.

``kind_split`` decomposes trained weights into this form (largest singular components become the learngene);
``KindLinear`` is the gated layer used to (pre-)train a decomposable model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_weights.tool_io import load_weights, save_weights

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "KindFactors",
    "KindSplitInput",
    "KindSplitOutput",
    "kind_linear",
    "kind_reconstruct_file",
    "kind_split",
    "kind_split_tool",
    "split_weight",
]

Assignment = Literal["round_robin", "contiguous"]


@dataclass
class KindFactors:
    """A matrix in KIND form: ``W = Σ_j σ_j u_j v_jᵀ`` over learngene components and class-gated tailors."""

    u_gene: torch.Tensor  # (out, g)
    s_gene: torch.Tensor  # (g,)
    v_gene: torch.Tensor  # (in, g)
    u_tailor: torch.Tensor  # (out, t)
    s_tailor: torch.Tensor  # (t,)
    v_tailor: torch.Tensor  # (in, t)
    tailor_class: torch.Tensor  # (t,) int64: the class each tailor component serves

    def learngene(self) -> torch.Tensor:
        """The class-agnostic part ``U_g·diag(σ_g)·V_gᵀ``."""
        return (self.u_gene * self.s_gene) @ self.v_gene.T

    def gate(self, classes: torch.Tensor | list[int] | None) -> torch.Tensor:
        """The tailor gate: 1 for tailors of the given classes (all tailors when ``classes`` is None), else 0."""
        import torch

        if classes is None:
            return torch.ones_like(self.s_tailor)
        wanted = torch.as_tensor(classes, dtype=torch.int64).reshape(-1)
        return torch.isin(self.tailor_class, wanted).to(self.s_tailor.dtype)

    def weight(self, classes: torch.Tensor | list[int] | None = None) -> torch.Tensor:
        """The matrix seen by samples of ``classes``: learngene plus their tailors (all tailors if None)."""
        tailors = (self.u_tailor * (self.s_tailor * self.gate(classes))) @ self.v_tailor.T
        return self.learngene() + tailors


def _assign(count: int, n_classes: int, assignment: Assignment) -> torch.Tensor:
    import torch

    if assignment == "round_robin":
        return torch.arange(count, dtype=torch.int64) % n_classes
    per = -(-count // n_classes) if count else 1
    return torch.arange(count, dtype=torch.int64) // per


def split_weight(
    weight: torch.Tensor, n_learngene: int, n_classes: int, *, assignment: Assignment = "round_robin"
) -> KindFactors:
    """Decompose a 2-D weight by SVD: the ``n_learngene`` largest components become the learngene, the rest tailors.

    Tailors are assigned to the ``n_classes`` classes round-robin (each class gets a spread of singular values) or
    in contiguous blocks. With every gate open the factors reproduce ``weight`` up to float rounding.
    """
    import torch

    if weight.dim() != 2:
        raise ToolError(f"KIND splits matrices; got a tensor of shape {tuple(weight.shape)}")
    if n_classes < 1:
        raise ToolError("n_classes must be at least 1")
    u, s, vh = torch.linalg.svd(weight.detach().to(torch.float64), full_matrices=False)
    rank = s.numel()
    if not 0 <= n_learngene <= rank:
        raise ToolError(f"n_learngene={n_learngene} must be in 0..{rank} (the number of singular values)")
    dtype = weight.dtype
    v = vh.T
    g = n_learngene
    return KindFactors(
        u_gene=u[:, :g].to(dtype),
        s_gene=s[:g].to(dtype),
        v_gene=v[:, :g].to(dtype),
        u_tailor=u[:, g:].to(dtype),
        s_tailor=s[g:].to(dtype),
        v_tailor=v[:, g:].to(dtype),
        tailor_class=_assign(rank - g, n_classes, assignment),
    )


def kind_split(
    weights: dict[str, torch.Tensor],
    *,
    learngene_fraction: float,
    n_classes: int,
    include: list[str] | None = None,
    assignment: Assignment = "round_robin",
) -> tuple[dict[str, KindFactors], dict[str, torch.Tensor]]:
    """Split every selected matrix of a state dict; returns ``(factors by name, untouched tensors)``."""
    factors: dict[str, KindFactors] = {}
    rest: dict[str, torch.Tensor] = {}
    for name, tensor in weights.items():
        selected = include is None or any(part in name for part in include)
        if selected and tensor.dim() == 2 and tensor.is_floating_point():
            rank = min(tensor.shape)
            factors[name] = split_weight(tensor, round(learngene_fraction * rank), n_classes, assignment=assignment)
        else:
            rest[name] = tensor
    return factors, rest


def kind_linear(
    in_features: int,
    out_features: int,
    *,
    n_learngene: int,
    n_tailor: int,
    n_classes: int,
    factors: KindFactors | None = None,
    bias: bool = True,
) -> nn.Module:
    """A linear layer in KIND form whose ``forward(x, classes)`` gates the tailors by each sample's class.

    Built from ``factors`` (a split of a trained weight) or randomly initialised; the learngene and tailor factors
    are separate parameter groups (``gene_parameters()``, ``tailor_parameters()``) so they can be transferred or
    re-initialised independently, ``reset_tailors()`` draws fresh tailors for a new task (random directions with
    singular value 0 by default, so the layer starts as its learngene alone and the tailors grow from there), and
    ``to_factors()`` returns the current :class:`KindFactors`.
    """
    import torch
    from torch import nn

    class _KindLinear(nn.Module):
        tailor_class: torch.Tensor

        def __init__(self) -> None:
            super().__init__()
            if factors is None:
                scale = (1.0 / in_features) ** 0.5
                self.u_gene = nn.Parameter(torch.randn(out_features, n_learngene) * scale)
                self.s_gene = nn.Parameter(torch.ones(n_learngene))
                self.v_gene = nn.Parameter(torch.randn(in_features, n_learngene) * scale)
                self.u_tailor = nn.Parameter(torch.randn(out_features, n_tailor) * scale)
                self.s_tailor = nn.Parameter(torch.ones(n_tailor))
                self.v_tailor = nn.Parameter(torch.randn(in_features, n_tailor) * scale)
                self.register_buffer("tailor_class", _assign(n_tailor, n_classes, "round_robin"))
            else:
                self.u_gene = nn.Parameter(factors.u_gene.clone())
                self.s_gene = nn.Parameter(factors.s_gene.clone())
                self.v_gene = nn.Parameter(factors.v_gene.clone())
                self.u_tailor = nn.Parameter(factors.u_tailor.clone())
                self.s_tailor = nn.Parameter(factors.s_tailor.clone())
                self.v_tailor = nn.Parameter(factors.v_tailor.clone())
                self.register_buffer("tailor_class", factors.tailor_class.clone())
            self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

        def gene_parameters(self) -> list[nn.Parameter]:
            return [self.u_gene, self.s_gene, self.v_gene]

        def tailor_parameters(self) -> list[nn.Parameter]:
            return [self.u_tailor, self.s_tailor, self.v_tailor]

        def reset_tailors(self, generator: torch.Generator | None = None, singular_value: float = 0.0) -> None:
            with torch.no_grad():
                scale = (1.0 / in_features) ** 0.5
                self.u_tailor.copy_(torch.randn(self.u_tailor.shape, generator=generator) * scale)
                self.v_tailor.copy_(torch.randn(self.v_tailor.shape, generator=generator) * scale)
                self.s_tailor.fill_(singular_value)

        def to_factors(self) -> KindFactors:
            return KindFactors(
                u_gene=self.u_gene.detach(),
                s_gene=self.s_gene.detach(),
                v_gene=self.v_gene.detach(),
                u_tailor=self.u_tailor.detach(),
                s_tailor=self.s_tailor.detach(),
                v_tailor=self.v_tailor.detach(),
                tailor_class=self.tailor_class,
            )

        def forward(self, x: torch.Tensor, classes: torch.Tensor | None = None) -> torch.Tensor:
            gene = ((x @ self.v_gene) * self.s_gene) @ self.u_gene.T
            if classes is None:
                gate = torch.ones(x.shape[0], self.s_tailor.numel(), dtype=x.dtype)
            else:
                gate = (classes.reshape(-1, 1) == self.tailor_class.reshape(1, -1)).to(x.dtype)
            tailor = ((x @ self.v_tailor) * (self.s_tailor * gate)) @ self.u_tailor.T
            out = gene + tailor
            return out + self.bias if self.bias is not None else out

    return _KindLinear()


_PAPER = "KIND: Knowledge Integration and Diversion for Training Decomposable Models (Xie et al., ICML 2025)"


class KindSplitInput(BaseModel):
    """Arguments of the ``kind_split`` tool."""

    weights: str = Field(description="a .safetensors file or model folder")
    out: str = Field(description="output .safetensors file with the factors (and the untouched tensors)")
    n_classes: int = Field(ge=1, description="number of classes the tailors are divided among")
    learngene_fraction: float = Field(default=0.5, ge=0, le=1, description="share of each rank kept as learngene")
    include: list[str] | None = Field(default=None, description="only matrices whose name contains one of these")
    assignment: Assignment = "round_robin"


class KindSplitOutput(BaseModel):
    """Result of the ``kind_split`` tool."""

    out: str
    matrices: int
    learngene_parameters: int
    tailor_parameters: int
    max_reconstruction_error: float = Field(description="largest relative error with every gate open")
    learngene_energy: float = Field(description="share of the squared Frobenius norm held by the learngenes")


_PARTS = ("u_gene", "s_gene", "v_gene", "u_tailor", "s_tailor", "v_tailor", "tailor_class")


@tool(name="kind_split", family="weights", paper=_PAPER, tags=("learngene", "svd", "decomposition"))
def kind_split_tool(args: KindSplitInput) -> KindSplitOutput:
    """Split a model's matrices KIND-style into SVD learngenes and class-gated tailors, written as safetensors.

    Each matrix ``NAME`` becomes ``NAME.kind.{u,s,v}_{gene,tailor}`` and ``NAME.kind.tailor_class``; other tensors
    are copied. ``kind_reconstruct_file`` rebuilds full or class-specific weights from the result.
    """
    import torch

    weights = load_weights(args.weights)
    factors, rest = kind_split(
        weights,
        learngene_fraction=args.learngene_fraction,
        n_classes=args.n_classes,
        include=args.include,
        assignment=args.assignment,
    )
    if not factors:
        raise ToolError(f"{args.weights} has no matrices to split", hint="check 'include'")
    out: dict[str, torch.Tensor] = dict(rest)
    worst = 0.0
    gene_energy = 0.0
    total_energy = 0.0
    gene_params = tailor_params = 0
    for name, f in factors.items():
        for part in _PARTS:
            out[f"{name}.kind.{part}"] = getattr(f, part)
        original = weights[name].to(torch.float64)
        error = float((f.weight().to(torch.float64) - original).norm() / original.norm().clamp_min(1e-30))
        worst = max(worst, error)
        gene_energy += float((f.s_gene.to(torch.float64) ** 2).sum())
        total_energy += float((original**2).sum())
        gene_params += f.u_gene.numel() + f.s_gene.numel() + f.v_gene.numel()
        tailor_params += f.u_tailor.numel() + f.s_tailor.numel() + f.v_tailor.numel()
    path = save_weights(out, args.out, metadata={"format": "malot-kind", "n_classes": str(args.n_classes)})
    return KindSplitOutput(
        out=str(path),
        matrices=len(factors),
        learngene_parameters=gene_params,
        tailor_parameters=tailor_params,
        max_reconstruction_error=worst,
        learngene_energy=gene_energy / total_energy if total_energy else 0.0,
    )


def kind_reconstruct_file(path: str, classes: list[int] | None = None) -> dict[str, torch.Tensor]:
    """Rebuild plain weights from a ``kind_split`` file: learngene plus the tailors of ``classes`` (all if None)."""
    tensors = load_weights(path)
    names = {k[: -len(".kind.u_gene")] for k in tensors if k.endswith(".kind.u_gene")}
    out = {k: v for k, v in tensors.items() if ".kind." not in k}
    for name in names:
        f = KindFactors(*(tensors[f"{name}.kind.{part}"] for part in _PARTS))
        out[name] = f.weight(classes)
    return out
