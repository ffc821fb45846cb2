"""LAF, label-agnostic forgetting (Shen et al., ICLR 2024, "Label-Agnostic Forgetting: A Supervision-Free
Unlearning in Deep Models"): representation-level unlearning with two VAEs and contrastive alignment.

Given a trained classifier ``h ∘ f`` (extractor ``f``, head ``h``), retained inputs ``x_r`` and inputs to forget
``x_f`` — *no labels needed* — LAF:

1. fits a VAE ``V_r`` to the original representations ``f₀(x_r)`` and a VAE ``V_f`` to ``f₀(x_f)`` (their ELBO
   losses ``ℓ_r``, ``ℓ_f`` measure how typical a representation is of each distribution);
2. **extractor unlearning**: moves ``f`` so retained representations stay typical of the retained distribution and
   forget representations stop being typical of theirs: ``min ℓ_r(f(x_r)) − α·log ℓ_f(f(x_f))`` (the log bounds the
   ascent term), with the forget representations also pushed away from their originals ``f₀(x_f)``;
3. **representation alignment**: a supervision-free contrastive step (InfoNCE, temperature ``τ``) pulls each
   ``f(x_r)`` towards its original ``f₀(x_r)`` against the forget representations as negatives, so the untouched
   head ``h`` still reads the retained data. Ours beyond the paper: the alignment also matches the standardised
   representations in squared distance (InfoNCE is blind to scale, the linear head is not) and keeps the step-2
   term on, so aligning cannot undo the forgetting; the VAEs see representations standardised by the retained
   set's statistics, which removes the "shrink every representation" shortcut of step 2;
4. optionally (``refit_head``, needs retained labels) refits the head on ``f(x_r)``.

The algorithm is the paper's at toy scale; the VAEs, InfoNCE and optimisation are written here in torch.
Pipeline use: forget leaked benchmark items from a model without the labels of what leaked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool

if TYPE_CHECKING:
    import torch

    from malot_continual.core.data import LabelledData
    from malot_continual.core.nets import MultiHeadMLP, SmallVAE

__all__ = ["LafInput", "LafOutput", "LafReport", "laf_unlearn", "laf_unlearn_tool", "train_vae", "vae_loss"]

_PAPER = "Label-Agnostic Forgetting: A Supervision-Free Unlearning in Deep Models (Shen et al., ICLR 2024)"


def vae_loss(vae: SmallVAE, reps: torch.Tensor, *, beta: float = 0.1, sample: bool = False) -> torch.Tensor:
    """Per-example negative ELBO: squared reconstruction error plus ``β``·KL (the posterior mean when not sampling)."""
    import torch

    stats = vae.enc(reps)
    mu, logvar = stats.chunk(2, dim=-1)
    logvar = logvar.clamp(-10.0, 10.0)
    z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if sample else mu
    recon = ((vae.dec(z) - reps) ** 2).sum(-1)
    kl = 0.5 * (mu**2 + logvar.exp() - 1.0 - logvar).sum(-1)
    out: torch.Tensor = recon + beta * kl
    return out


def train_vae(reps: torch.Tensor, *, latent: int = 8, epochs: int = 200, lr: float = 0.005, seed: int = 0) -> SmallVAE:
    """Fit a small VAE to representation rows (full batch, Adam), then freeze it."""
    import torch

    torch.manual_seed(seed)
    from malot_continual.core.nets import SmallVAE

    vae = SmallVAE(int(reps.shape[1]), latent)
    opt = torch.optim.Adam(vae.parameters(), lr=lr)
    data = reps.detach()
    for _ in range(epochs):
        loss = vae_loss(vae, data, sample=True).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
    for p in vae.parameters():
        p.requires_grad_(False)
    return vae


def _info_nce(anchor: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor, tau: float) -> torch.Tensor:
    """InfoNCE: each anchor row against its positive row and every negative row (cosine similarities / τ)."""
    import torch

    a = torch.nn.functional.normalize(anchor, dim=1)
    pos = (a * torch.nn.functional.normalize(positive, dim=1)).sum(-1, keepdim=True)
    neg = a @ torch.nn.functional.normalize(negatives, dim=1).T
    logits = torch.cat([pos, neg], dim=1) / tau
    return torch.nn.functional.cross_entropy(logits, torch.zeros(len(a), dtype=torch.long))


@dataclass
class LafReport:
    """Loss curves of the two unlearning phases."""

    extractor_losses: list[float]
    alignment_losses: list[float]


def laf_unlearn(
    model: MultiHeadMLP,
    remain_x: torch.Tensor,
    forget_x: torch.Tensor,
    *,
    extractor_steps: int = 60,
    align_steps: int = 60,
    alpha: float = 1.0,
    tau: float = 0.5,
    lr: float = 0.002,
    vae_epochs: int = 200,
    latent: int = 8,
    remain_y: torch.Tensor | None = None,
    refit_head: bool = False,
    head: int = 0,
    seed: int = 0,
) -> LafReport:
    """Unlearn ``forget_x`` from ``model`` in place with LAF; only ``model.body`` (and the head if refit) changes."""
    import torch

    from malot_continual.core.data import check_features

    check_features(remain_x, "remain_x")
    check_features(forget_x, "forget_x")
    if remain_x.shape[1] != model.in_dim or forget_x.shape[1] != model.in_dim:
        raise ToolError(f"the model takes {model.in_dim} features; got {remain_x.shape[1]} and {forget_x.shape[1]}")
    if refit_head and (remain_y is None or remain_y.shape[0] != remain_x.shape[0]):
        raise ToolError("refit_head needs one label per retained row", hint="pass remain_y or refit_head=False")
    torch.manual_seed(seed)
    with torch.no_grad():
        rep_r0, rep_f0 = model.features(remain_x), model.features(forget_x)
    mean, spread = rep_r0.mean(0), rep_r0.std(0)  # VAEs see standardised representations: no scale shortcut
    std = spread.clamp(min=0.1 * float(spread.mean()) + 1e-6)  # dimensions dead on the retained set stay finite

    def std_(rep: torch.Tensor) -> torch.Tensor:
        return (rep - mean) / std

    vae_r = train_vae(std_(rep_r0), latent=latent, epochs=vae_epochs, seed=seed)
    vae_f = train_vae(std_(rep_f0), latent=latent, epochs=vae_epochs, seed=seed + 1)
    body = list(model.body.parameters())
    with torch.no_grad():  # the ascent stops once the forget VAE explains the forget set 10x worse than at first
        cap = 10.0 * float(vae_loss(vae_f, std_(rep_f0)).mean())

    def unlearn_term(rep_r: torch.Tensor, rep_f: torch.Tensor) -> torch.Tensor:
        """ℓ_r(f(x_r)) + ℓ_r(f(x_f)) − α·log min(ℓ_f(f(x_f)), cap) + cos(f(x_f), f₀(x_f))."""
        away = torch.nn.functional.cosine_similarity(rep_f, rep_f0, dim=1).mean()
        return (
            vae_loss(vae_r, std_(rep_r)).mean()
            + vae_loss(vae_r, std_(rep_f)).mean()
            - alpha * torch.log(vae_loss(vae_f, std_(rep_f)).mean().clamp(max=cap) + 1e-6)
            + away
        )

    report = LafReport([], [])
    opt = torch.optim.Adam(body, lr=lr)
    for _ in range(extractor_steps):
        loss = unlearn_term(model.features(remain_x), model.features(forget_x))
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        report.extractor_losses.append(float(loss.detach()))
    opt = torch.optim.Adam(body, lr=lr)
    for _ in range(align_steps):
        rep_r, rep_f = model.features(remain_x), model.features(forget_x)
        align = _info_nce(rep_r, rep_r0, rep_f, tau) + ((std_(rep_r) - std_(rep_r0)) ** 2).sum(-1).mean()
        loss = align + unlearn_term(rep_r, rep_f)
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        report.alignment_losses.append(float(align.detach()))
    if refit_head and remain_y is not None:
        with torch.no_grad():
            feats = model.features(remain_x)
        head_layer = model.head_linear(head)
        opt = torch.optim.Adam(head_layer.parameters(), lr=0.01)
        for _ in range(100):
            loss = torch.nn.functional.cross_entropy(head_layer(feats), remain_y)
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
    return report


class LafInput(BaseModel):
    """Arguments of the ``laf_unlearn`` tool."""

    model: str = Field(description="trained model file (.safetensors, from consolidated_train or cuber_step)")
    remain: str = Field(description="retained inputs (.npz with x; y used only for the report or refit_head)")
    forget: str = Field(description="inputs to forget, e.g. leaked benchmark items (.npz with x; y optional)")
    out: str = Field(description="where to write the unlearnt model (.safetensors)")
    extractor_steps: int = Field(default=60, ge=0)
    align_steps: int = Field(default=60, ge=0)
    alpha: float = Field(default=1.0, ge=0, description="weight of the forget-VAE ascent term")
    tau: float = Field(default=0.5, gt=0, description="InfoNCE temperature")
    lr: float = Field(default=0.002, gt=0)
    refit_head: bool = Field(default=False, description="refit the head on retained labels (no longer label-free)")
    head: int = Field(default=0, ge=0)
    seed: int = 0


class LafOutput(BaseModel):
    """Result of the ``laf_unlearn`` tool (accuracies use the files' labels, when they have them)."""

    forget_accuracy_before: float
    forget_accuracy_after: float
    remain_accuracy_before: float
    remain_accuracy_after: float
    model: str


@tool(
    name="laf_unlearn",
    family="continual",
    paper=_PAPER,
    tags=("continual", "unlearning", "forgetting", "label-free", "privacy", "contamination"),
)
def laf_unlearn_tool(args: LafInput) -> LafOutput:
    """Unlearn examples without their labels (LAF): two VAEs move the extractor, contrastive alignment keeps the rest.

    Pipeline use: forget leaked benchmark items. Writes the unlearnt model and reports accuracy before and after.
    """
    import torch

    from malot_continual.core.data import load_npz
    from malot_continual.core.mlp import accuracy, load_mlp, save_mlp
    from malot_continual.core.nets import MultiHeadMLP

    model = load_mlp(args.model)
    assert isinstance(model, MultiHeadMLP)
    if args.head >= len(model.heads):
        raise ToolError(f"head {args.head} does not exist; the model has {len(model.heads)}")
    remain, forget = load_npz(args.remain), load_npz(args.forget)
    if len(remain) == 0 or len(forget) == 0:
        raise ToolError("the retained and forget sets must both be non-empty")
    if remain.dim == forget.dim:
        forget_rows = {row.tobytes() for row in forget.x.numpy()}
        shared = sum(row.tobytes() in forget_rows for row in remain.x.numpy())
        if shared:
            raise ToolError(f"{shared} rows are in both the retained and the forget set", hint="make them disjoint")

    def acc(data: LabelledData) -> float:
        return accuracy(model, data, head=args.head)

    before = (acc(forget), acc(remain))
    laf_unlearn(
        model,
        remain.x,
        forget.x,
        extractor_steps=args.extractor_steps,
        align_steps=args.align_steps,
        alpha=args.alpha,
        tau=args.tau,
        lr=args.lr,
        remain_y=remain.y if args.refit_head else None,
        refit_head=args.refit_head,
        head=args.head,
        seed=args.seed,
    )
    torch.manual_seed(args.seed)
    path = save_mlp(model, Path(args.out))
    return LafOutput(
        forget_accuracy_before=before[0],
        forget_accuracy_after=acc(forget),
        remain_accuracy_before=before[1],
        remain_accuracy_after=acc(remain),
        model=str(path),
    )
