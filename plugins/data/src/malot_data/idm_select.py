"""IDM (Wang et al., "Informative Data Mining for One-Shot Cross-Domain Semantic Segmentation", ICCV 2023):
choose the few target samples worth adapting to, then adapt with patch mixing and prototype information
maximisation.

1. **Informative data mining (§3.2)**: the source model's predictive entropy ``H(p(x))`` on every unlabelled target
   sample ranks the pool; the ``k`` most uncertain samples — the ones the source model understands least — are
   selected (ties: lower index first).
2. **Patch-wise mixing (§3.3)**: source and selected target samples are cut into a grid of patches and a random
   half of the patches is swapped; the mixed sample's label mixes the source label and the target pseudo-label by
   the area each contributes, bridging the two domains.
3. **Prototype-based information maximisation (§3.3)**: class prototypes (mean features of the source classes,
   refreshed with confident target features) give target pseudo-labels by nearest prototype; the model minimises
   the information-maximisation loss ``E[H(p(x))] − H(E[p(x)])`` on target samples (confident and diverse
   predictions) plus the cross-entropy to the prototype pseudo-labels.

All three steps are the paper's; segmentation becomes classification here: patches of an ``H × W`` image given as a
flat vector, a small MLP instead of DeepLab.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_data.core.arrays import check_labels, check_matrix, load_array, save_arrays
from malot_data.core.stats import entropy, to_probabilities

if TYPE_CHECKING:
    import numpy as np
    import torch
    from numpy.typing import NDArray
    from torch import nn

__all__ = [
    "IdmAdaptResult",
    "IdmSelectInput",
    "IdmSelectOutput",
    "entropy_rank",
    "idm_adapt",
    "idm_select",
    "info_max_loss",
    "patch_mix",
    "prototype_pseudo_labels",
]

_PAPER = "Informative Data Mining for One-Shot Cross-Domain Semantic Segmentation (Wang et al., ICCV 2023)"


def entropy_rank(probs: Any, k: int) -> tuple[list[int], NDArray[np.float64]]:
    """The ``k`` pool indices of highest predictive entropy (highest first, ties by index) and every entropy."""
    import numpy as np

    p = check_matrix(probs, name="pool outputs")
    if not 0 < k <= p.shape[0]:
        raise ToolError(f"k={k} must be between 1 and the {p.shape[0]} pool samples", hint="lower k")
    h = entropy(p)
    order = np.lexsort((np.arange(h.size), -h))
    return [int(i) for i in order[:k]], h


def patch_mix(
    x_source: torch.Tensor, x_target: torch.Tensor, shape: tuple[int, int], grid: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Swap a random half of the ``grid × grid`` patches (``1 × grid`` for a ``1 × W`` strip) of each target image
    (flat, ``H × W``) into the paired source image; returns the mixed images and each one's source-area share λ."""
    import torch

    height, width = shape
    rows = grid if height > 1 else 1  # a 1×W strip is cut into ``grid`` pieces along its width
    if x_source.shape != x_target.shape or x_source.shape[1] % (height * width):
        raise ToolError(f"patch mixing needs equal-shape inputs of C×{height}×{width} values each")
    if height % rows or width % grid:
        raise ToolError(f"a {rows}×{grid} patch grid does not divide a {height}×{width} image", hint="change grid")
    n = x_source.shape[0]
    cells = rows * grid
    keep_source = torch.zeros(n, cells)
    for i in range(n):
        keep_source[i, torch.randperm(cells, generator=generator)[: cells // 2]] = 1.0
    mask = keep_source.view(n, 1, rows, 1, grid, 1).expand(n, 1, rows, height // rows, grid, width // grid)
    mask = mask.reshape(n, 1, height, width)
    src = x_source.view(n, -1, height, width)
    tgt = x_target.view(n, -1, height, width)
    mixed = (mask * src + (1 - mask) * tgt).reshape(n, -1)
    return mixed, keep_source.mean(dim=1)


def info_max_loss(logits: torch.Tensor) -> torch.Tensor:
    """Information maximisation: mean per-sample entropy minus the entropy of the mean prediction."""
    import torch

    p = torch.softmax(logits, dim=1)
    cond = -(p * torch.log(p.clamp_min(1e-12))).sum(dim=1).mean()
    mean = p.mean(dim=0)
    marginal = -(mean * torch.log(mean.clamp_min(1e-12))).sum()
    return cond - marginal


def prototype_pseudo_labels(features: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    """Nearest-prototype class (cosine) of every feature row."""
    import torch

    f = torch.nn.functional.normalize(features, dim=1)
    c = torch.nn.functional.normalize(prototypes, dim=1)
    return (f @ c.T).argmax(dim=1)


@dataclass
class IdmAdaptResult:
    """Selected target indices, their entropies under the source model, and the adaptation losses."""

    selected: list[int]
    entropies: list[float]
    losses: list[float] = field(default_factory=list)


def idm_adapt(
    model: nn.Sequential,
    x_source: torch.Tensor,
    y_source: torch.Tensor,
    x_pool: torch.Tensor,
    k: int,
    *,
    image_shape: tuple[int, int],
    grid: int = 2,
    steps: int = 100,
    lr: float = 1e-3,
    im_weight: float = 1.0,
    selection: Literal["entropy", "random", "confident"] = "entropy",
    seed: int = 0,
) -> IdmAdaptResult:
    """Select ``k`` pool samples (``entropy``: IDM; ``random``/``confident``: the ablation baselines) and adapt
    ``model`` in place on them with source CE, patch-mixed CE and prototype information maximisation."""
    import torch

    from malot_data.core.nets import penultimate, soft_cross_entropy

    classes = int(y_source.max()) + 1
    generator = torch.Generator().manual_seed(seed)
    model.eval()
    with torch.no_grad():
        probs = torch.softmax(model(x_pool), dim=1).numpy()
    ranked, ent = entropy_rank(probs, k)
    if selection == "random":
        chosen = [int(i) for i in torch.randperm(x_pool.shape[0], generator=generator)[:k]]
    elif selection == "confident":
        chosen = [int(i) for i in ent.argsort(kind="stable")[:k]]
    else:
        chosen = ranked
    target = x_pool[chosen]
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses: list[float] = []
    for _ in range(steps):
        model.eval()
        with torch.no_grad():  # prototypes: source class means, refreshed by the target features assigned to them
            src_feat = penultimate(model, x_source)
            protos = torch.stack([src_feat[y_source == c].mean(dim=0) for c in range(classes)])
            tgt_feat = penultimate(model, target)
            pseudo = prototype_pseudo_labels(tgt_feat, protos)
            for c in range(classes):
                hit = pseudo == c
                if bool(hit.any()):
                    protos[c] = 0.5 * protos[c] + 0.5 * tgt_feat[hit].mean(dim=0)
            pseudo = prototype_pseudo_labels(tgt_feat, protos)
        model.train()
        batch = torch.randint(x_source.shape[0], (max(k, 16),), generator=generator)
        pair = torch.randint(k, (batch.numel(),), generator=generator)
        mixed, lam = patch_mix(x_source[batch], target[pair], image_shape, grid, generator)
        one_src = torch.nn.functional.one_hot(y_source[batch], classes).float()
        one_tgt = torch.nn.functional.one_hot(pseudo[pair], classes).float()
        mixed_label = lam[:, None] * one_src + (1 - lam[:, None]) * one_tgt
        tgt_logits = model(target)
        loss = (
            soft_cross_entropy(model(x_source[batch]), y_source[batch])
            + soft_cross_entropy(model(mixed), mixed_label)
            + im_weight * info_max_loss(model(x_pool[torch.randint(x_pool.shape[0], (64,), generator=generator)]))
            + soft_cross_entropy(tgt_logits, pseudo)
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        losses.append(float(loss.detach()))
    model.eval()
    return IdmAdaptResult(selected=chosen, entropies=[float(ent[i]) for i in chosen], losses=losses)


class IdmSelectInput(BaseModel):
    """Arguments of ``idm_select``: rank a pool by the model's outputs, or also train, select and adapt."""

    k: int = Field(gt=0, description="target samples to select")
    outputs: str | None = Field(default=None, description="the source model's outputs on the pool (n × classes)")
    outputs_kind: Literal["probs", "logits"] = Field(default="logits")
    source_data: str | None = Field(default=None, description="adapt mode: labelled source inputs (flat images)")
    source_labels: str | None = Field(default=None, description="adapt mode: their labels")
    pool: str | None = Field(default=None, description="adapt mode: the unlabelled target pool (flat images)")
    image_height: int = Field(default=0, ge=0, description="adapt mode: H of the H×W images (0: a 1×d strip)")
    grid: int = Field(default=2, gt=0, description="adapt mode: patch grid for mixing")
    steps: int = Field(default=100, gt=0, description="adapt mode: adaptation steps")
    source_steps: int = Field(default=300, gt=0, description="adapt mode: source-model training steps")
    out: str | None = Field(default=None, description="adapt mode: .npz for the adapted model's pool predictions")
    seed: int = 0


class IdmSelectOutput(BaseModel):
    """Result of ``idm_select``."""

    selected: list[int]
    entropies: list[float]
    adapted: bool
    out: str | None


def _need(value: str | None, name: str) -> str:
    if value is None:
        raise ToolError(f"adapt mode needs {name}", hint="pass outputs to rank only, or all of the adapt-mode files")
    return value


@tool(
    name="idm_select",
    family="data",
    paper=_PAPER,
    tags=("data-selection", "one-shot", "few-shot", "domain-adaptation", "uncertainty", "needs:model-outputs"),
)
def idm_select(args: IdmSelectInput) -> IdmSelectOutput:
    """IDM: select the ``k`` most uncertain (highest-entropy) target samples; optionally adapt to them.

    With ``outputs`` it ranks the pool by the source model's predictive entropy. With source data and a pool it
    trains a small source model, selects, adapts with patch mixing and prototype information maximisation, and
    writes the adapted model's pool predictions.
    """
    import torch

    if args.outputs is not None:
        raw = check_matrix(load_array(args.outputs, name="outputs"), name="outputs")
        selected, ent = entropy_rank(to_probabilities(raw, kind=args.outputs_kind), args.k)
        return IdmSelectOutput(selected=selected, entropies=[float(ent[i]) for i in selected], adapted=False, out=None)
    from malot_data.core.nets import make_mlp, train_classifier

    xs = check_matrix(load_array(_need(args.source_data, "source_data"), name="source_data"), name="source_data")
    ys = check_labels(
        load_array(_need(args.source_labels, "source_labels"), name="source_labels"),
        name="source_labels",
        rows=xs.shape[0],
    )
    xp = check_matrix(load_array(_need(args.pool, "pool"), name="pool"), name="pool")
    if xp.shape[1] != xs.shape[1]:
        raise ToolError(f"pool has {xp.shape[1]} features, source data {xs.shape[1]}", hint="use the same inputs")
    d = xs.shape[1]
    height = args.image_height or 1
    if d % height:
        raise ToolError(f"image_height={height} does not divide the {d} features", hint="give the true H")
    src, lab, pool = (torch.tensor(xs, dtype=torch.float32), torch.tensor(ys), torch.tensor(xp, dtype=torch.float32))
    model = make_mlp(d, int(ys.max()) + 1, seed=args.seed)
    train_classifier(model, src, lab, steps=args.source_steps, seed=args.seed)
    result = idm_adapt(
        model,
        src,
        lab,
        pool,
        args.k,
        image_shape=(height, d // height),
        grid=args.grid,
        steps=args.steps,
        seed=args.seed,
    )
    out = None
    if args.out:
        with torch.no_grad():
            probs = torch.softmax(model(pool), dim=1).numpy()
        out = str(save_arrays(args.out, probs=probs, predictions=probs.argmax(axis=1), selected=result.selected))
    return IdmSelectOutput(selected=result.selected, entropies=result.entropies, adapted=True, out=out)
