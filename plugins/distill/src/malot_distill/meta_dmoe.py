"""Meta-DMoE (Zhong et al., NeurIPS 2022): test-time adaptation by meta-distillation from a mixture of domain experts.

*Meta-DMoE: Adapting to Domain Shift by Meta-Distillation from Mixture-of-Experts.* One expert per source domain is
trained and frozen. A transformer *aggregator* reads the experts' features of a sample (one token per expert) and
produces a teacher feature. At test time the student adapts on an unlabelled target batch with one (or a few)
gradient steps of feature distillation towards the aggregated teacher:

    θ' = θ − α ∇_θ ‖f_θ(x) − A(E_1(x), …, E_K(x))‖²        (the paper's L_KD, on the unlabelled batch)

and predicts with ``head(f_θ'(x))``. Student and aggregator are meta-trained MAML-style so that this adaptation
helps: per episode, a source domain ``d`` is drawn, its own expert is masked out (as in the paper), the inner step
runs on an unlabelled support batch from ``d``, and the outer loss is cross-entropy of the adapted student on a
labelled query batch from ``d``; θ, the head and the aggregator are updated through the inner step (second order).

Exact properties (tests): experts never change; with one expert and the ``mean`` (identity) aggregator the
adaptation step is plain feature KD from that expert; a student whose features already equal the teacher's does not
move; with ``α = 0`` meta-training is plain cross-entropy training. Paper: aggregator, masking, bi-level objective.
Library: PyTorch (``nn.TransformerEncoderLayer``, ``torch.func.functional_call`` for the functional inner step;
the reference code uses ``higher``, which is unmaintained).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "MetaDmoeInput",
    "MetaDmoeOutput",
    "MetaTrainResult",
    "adapt",
    "adapt_body",
    "adapted_params",
    "build_aggregator",
    "expert_features",
    "meta_dmoe_adapt",
    "meta_train",
]

_PAPER = "Zhong et al., NeurIPS 2022: Meta-DMoE: Adapting to Domain Shift by Meta-Distillation from Mixture-of-Experts"

Aggregator = Literal["transformer", "mean"]


def expert_features(experts: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """``(N, K, D)`` features of every frozen expert (experts must share a feature width)."""
    import torch

    with torch.no_grad():
        feats = [e.features(x) for e in experts]  # type: ignore[operator]
    widths = {int(f.shape[-1]) for f in feats}
    if len(widths) != 1:
        raise ToolError(f"experts have different feature widths {sorted(widths)}", hint="use experts of one shape")
    return torch.stack(feats, dim=1)


def build_aggregator(kind: Aggregator, expert_width: int, student_width: int, seed: int = 0) -> nn.Module:
    """The aggregator ``A``: a one-layer transformer encoder over expert tokens (mean-pooled, projected to the
    student's width), or ``mean``: the plain average of the expert features (the identity for one expert)."""
    import torch
    from torch import nn

    class MeanAggregator(nn.Module):
        """Average of the expert tokens (masked tokens excluded)."""

        def forward(self, tokens: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
            weight = keep.float().view(1, -1, 1)
            return (tokens * weight).sum(1) / weight.sum()

    class TransformerAggregator(nn.Module):
        """Self-attention across experts, then mean over the kept tokens and a linear map to the student width."""

        def __init__(self) -> None:
            super().__init__()
            heads = 2 if expert_width % 2 == 0 else 1
            self.encoder = nn.TransformerEncoderLayer(
                expert_width, heads, dim_feedforward=2 * expert_width, dropout=0.0, batch_first=True
            )
            self.out = nn.Linear(expert_width, student_width)

        def forward(self, tokens: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
            mixed = self.encoder(tokens, src_key_padding_mask=(~keep).unsqueeze(0).expand(tokens.shape[0], -1))
            weight = keep.float().view(1, -1, 1)
            out: torch.Tensor = self.out((mixed * weight).sum(1) / weight.sum())
            return out

    if kind == "mean":
        if expert_width != student_width:
            raise ToolError(
                f"the mean aggregator needs expert width ({expert_width}) = student feature width ({student_width})",
                hint="use the transformer aggregator",
            )
        return MeanAggregator()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return TransformerAggregator()


def _parts(student: nn.Module) -> tuple[nn.Module, nn.Module]:
    """The student's ``(body, head)``; a clear error for a model without them."""
    from torch import nn

    body, head = getattr(student, "body", None), getattr(student, "head", None)
    if not isinstance(body, nn.Module) or not isinstance(head, nn.Module):
        raise ToolError("the student must be a distill MLP (body + head)", hint="build it with core.mlp.build_mlp")
    return body, head


def adapted_params(
    student: nn.Module,
    teacher_features: torch.Tensor,
    x: torch.Tensor,
    *,
    alpha: float,
    inner_steps: int = 1,
    create_graph: bool = False,
) -> dict[str, torch.Tensor]:
    """The student's body parameters after ``inner_steps`` SGD steps of feature KD towards ``teacher_features``."""
    import torch
    from torch.func import functional_call

    from malot_distill.core.kd import feature_l2

    body, _ = _parts(student)
    params: dict[str, torch.Tensor] = dict(body.named_parameters())
    for _ in range(inner_steps):
        loss = feature_l2(functional_call(body, params, (x,)), teacher_features).mean()
        grads = torch.autograd.grad(loss, list(params.values()), create_graph=create_graph, allow_unused=True)
        params = {n: p if g is None else p - alpha * g for (n, p), g in zip(params.items(), grads, strict=True)}
    return params


def adapt_body(
    student: nn.Module,
    experts: Sequence[nn.Module],
    aggregator: nn.Module,
    x: torch.Tensor,
    *,
    alpha: float,
    inner_steps: int = 1,
) -> dict[str, torch.Tensor]:
    """Test-time adaptation: the student's body parameters after feature KD from ``A(E(x))`` on the batch ``x``."""
    import torch

    body, _ = _parts(student)
    tokens = expert_features(experts, x)
    with torch.no_grad():
        teacher = aggregator(tokens, torch.ones(tokens.shape[1], dtype=torch.bool))
    start = {n: p.detach().clone().requires_grad_(True) for n, p in body.named_parameters()}
    return adapted_params_from(student, start, teacher, x, alpha=alpha, inner_steps=inner_steps)


def adapt(
    student: nn.Module,
    experts: Sequence[nn.Module],
    aggregator: nn.Module,
    x: torch.Tensor,
    *,
    alpha: float,
    inner_steps: int = 1,
) -> torch.Tensor:
    """Adapt the student on the unlabelled batch ``x`` and return its logits there (the student is not modified)."""
    import torch
    from torch.func import functional_call

    params = adapt_body(student, experts, aggregator, x, alpha=alpha, inner_steps=inner_steps)
    body, head = _parts(student)
    with torch.no_grad():
        out: torch.Tensor = head(functional_call(body, params, (x,)))
        return out


def adapted_params_from(
    student: nn.Module,
    params: dict[str, torch.Tensor],
    teacher: torch.Tensor,
    x: torch.Tensor,
    *,
    alpha: float,
    inner_steps: int,
) -> dict[str, torch.Tensor]:
    """SGD steps of feature KD starting from explicit body ``params`` (detached copies)."""
    import torch
    from torch.func import functional_call

    from malot_distill.core.kd import feature_l2

    body, _ = _parts(student)
    for _ in range(inner_steps):
        loss = feature_l2(functional_call(body, params, (x,)), teacher).mean()
        grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
        params = {
            n: (p if g is None else p - alpha * g).detach().requires_grad_(True)
            for (n, p), g in zip(params.items(), grads, strict=True)
        }
    return params


@dataclass
class MetaTrainResult:
    """Outer (query cross-entropy) loss per episode."""

    losses: list[float] = field(default_factory=list)


def meta_train(
    student: nn.Module,
    experts: Sequence[nn.Module],
    aggregator: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    domain: torch.Tensor,
    *,
    episodes: int,
    alpha: float = 0.1,
    lr: float = 1e-3,
    batch_size: int = 64,
    mask_own_expert: bool = True,
    seed: int = 0,
) -> MetaTrainResult:
    """Meta-train student (body + head) and aggregator in place; expert ``k`` belongs to domain ``k``."""
    import torch
    import torch.nn.functional as F
    from torch.func import functional_call

    body, head = _parts(student)
    domains = sorted(int(d) for d in torch.unique(domain))
    if any(d < 0 or d >= len(experts) for d in domains):
        raise ToolError(f"domain ids {domains} must index the {len(experts)} experts (expert k = domain k)")
    if mask_own_expert and len(experts) < 2:
        raise ToolError("masking the episode's own expert needs at least two experts", hint="pass more experts")
    tokens_all = expert_features(experts, x)
    gen = torch.Generator().manual_seed(seed)
    params = [*student.parameters(), *aggregator.parameters()]
    opt = torch.optim.Adam([p for p in params if p.requires_grad], lr=lr)
    result = MetaTrainResult()
    by_domain = {d: torch.nonzero(domain == d).squeeze(1) for d in domains}
    student.train()
    for _ in range(episodes):
        d = domains[int(torch.randint(len(domains), (1,), generator=gen))]
        pool = by_domain[d][torch.randperm(len(by_domain[d]), generator=gen)]
        half = max(1, min(batch_size, len(pool) // 2))
        support, query = pool[:half], pool[half : 2 * half]
        if len(query) == 0:
            raise ToolError(f"domain {d} has too few samples for a support and a query batch")
        keep = torch.ones(len(experts), dtype=torch.bool)
        if mask_own_expert:
            keep[d] = False
        teacher = aggregator(tokens_all[support], keep)
        fast = adapted_params(student, teacher, x[support], alpha=alpha, create_graph=True)
        logits = head(functional_call(body, fast, (x[query],)))
        loss = F.cross_entropy(logits, y[query])
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        result.losses.append(float(loss.detach()))
    student.eval()
    return result


class MetaDmoeInput(BaseModel):
    """Arguments of ``meta_dmoe_adapt``."""

    experts: list[str] = Field(
        min_length=1, description="frozen domain experts (distill MLP files), expert k = domain k"
    )
    student: str = Field(description="the student (distill MLP file)")
    target: str = Field(description=".safetensors with x: the unlabelled target batch (optional y to score)")
    out: str = Field(description="where to write the adapted student (.safetensors)")
    source_data: str | None = Field(
        default=None, description=".safetensors with x, y, domain for meta-training (skip to adapt only)"
    )
    aggregator: Aggregator = "transformer"
    episodes: int = Field(default=200, ge=0)
    alpha: float = Field(default=0.1, ge=0, description="inner (adaptation) step size")
    inner_steps: int = Field(default=1, ge=1)
    lr: float = Field(default=1e-3, gt=0)
    batch_size: int = Field(default=64, ge=2)
    seed: int = 0


class MetaDmoeOutput(BaseModel):
    """Result of ``meta_dmoe_adapt``."""

    out: str
    meta_loss_first: float | None
    meta_loss_last: float | None
    accuracy_before: float | None = Field(description="on the target batch, when it has labels y")
    accuracy_after: float | None


@tool(
    name="meta_dmoe_adapt",
    family="distill",
    paper=_PAPER,
    tags=(
        "distillation",
        "test-time",
        "domain-shift",
        "experts",
        "unlabelled-target",
        "needs:experts",
        "needs:student",
        "needs:target",
    ),
)
def meta_dmoe_adapt(args: MetaDmoeInput) -> MetaDmoeOutput:
    """Adapt a student to an unlabelled target batch by distilling from an aggregated mixture of domain experts.

    Optionally meta-trains the student and a transformer aggregator first (MAML over source domains, the episode's
    own expert masked), then takes ``inner_steps`` feature-KD steps on the target batch and writes the adapted
    student.
    """
    import torch

    from malot_distill.core.data import check_labels, load_tensors, require
    from malot_distill.core.mlp import load_mlp, save_mlp

    experts = [load_mlp(p) for p in args.experts]
    for e in experts:
        for p in e.parameters():
            p.requires_grad_(False)
    student = load_mlp(args.student)
    target = load_tensors(args.target)
    x_t = require(target, "x", dim=2)
    width_in = getattr(student, "sizes", [0])[0]
    if any(getattr(e, "sizes", [0])[0] != width_in for e in experts) or x_t.shape[1] != width_in:
        raise ToolError("experts, student and target data must have the same input width")
    expert_width = int(expert_features(experts, x_t[:1]).shape[-1])
    student_width = int(student.features(x_t[:1]).shape[-1])  # type: ignore[operator]
    aggregator = build_aggregator(args.aggregator, expert_width, student_width, seed=args.seed)
    losses: list[float] = []
    if args.source_data is not None and args.episodes > 0:
        source = load_tensors(args.source_data)
        xs = require(source, "x", dim=2)
        ys = check_labels(xs, require(source, "y"), getattr(student, "sizes", [0])[-1])
        dom = check_labels(xs, require(source, "domain"), len(experts))
        losses = meta_train(
            student,
            experts,
            aggregator,
            xs,
            ys,
            dom,
            episodes=args.episodes,
            alpha=args.alpha,
            lr=args.lr,
            batch_size=args.batch_size,
            seed=args.seed,
        ).losses
    y_t = check_labels(x_t, require(target, "y")) if "y" in target else None
    before = after = None
    if y_t is not None:
        with torch.no_grad():
            before = float((student(x_t).argmax(-1) == y_t).float().mean())
    final = adapt_body(student, experts, aggregator, x_t, alpha=args.alpha, inner_steps=args.inner_steps)
    with torch.no_grad():
        for name, param in _parts(student)[0].named_parameters():
            param.copy_(final[name])
        if y_t is not None:
            after = float((student(x_t).argmax(-1) == y_t).float().mean())
    save_mlp(student, args.out)
    return MetaDmoeOutput(
        out=args.out,
        meta_loss_first=losses[0] if losses else None,
        meta_loss_last=losses[-1] if losses else None,
        accuracy_before=before,
        accuracy_after=after,
    )
