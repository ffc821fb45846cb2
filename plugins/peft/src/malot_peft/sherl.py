"""``sherl``: SHERL, early anti-redundancy aggregation + late pretrained layers (Diao et al., ECCV 2024).

Paper: *SHERL: Synthesizing High Accuracy and Efficient Memory for Resource-Limited Transfer Learning* (Haiwen Diao,
Bo Wan, Xu Jia, Yunzhi Zhuge, Ying Zhang, Huchuan Lu, Long Chen). The backbone is split at layer ``L − k``.

* **Early route** (no autograd): the outputs ``b_1 … b_{L−k}`` of the early layers are downsampled,
  ``f_l = LN(D_l b_l)``, and merged by the *multi-tiered sensing adapter*. The deepest early state
  ``f_deep = f_{L−k}`` guides; the shallower ones ``l < L−k`` get anti-redundancy weights that favour layers relevant
  to ``f_deep`` and discount layers that repeat others: ``g_l = ReLU(fc(f_l ⊙ f_deep))``,
  ``ρ_l = Σ_m ReLU(cos(f_l, f_m))`` over the shallow layers (``ρ_l ≥ 1``: a layer's similarity mass, itself
  included), ``w_l = (g_l/ρ_l) / Σ_m (g_m/ρ_m)``, so ``Σ_l w_l = 1`` and an exact duplicate of a layer splits that
  layer's weight instead of doubling it. The aggregate is ``Σ_l w_l f_l + f_deep``.
* **Late route**: the aggregate is upsampled and added through a gate, ``h = b_{L−k} + tanh(γ)·U(agg)`` (``γ = 0``
  at start), then passes through the last ``k`` *pretrained* layers, whose weights stay frozen; autograd runs there
  (activations only), so memory grows with ``k``, not with ``L``.

What is ours: these equations are our reading of the paper (the authors' code, Paranioar/SHERL, targets vision and
vision-language backbones); the tanh gate and the ε that keeps the weights defined when every ``g_l`` is zero are
ours (the authors' code instead gates the backbone's state and replaces it with the upsampled aggregate at start).
``late_layers=0`` is the early-route-only ablation (the aggregate is added before the readout). Written from the
paper and a reading of the authors' code.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from malot.tools import tool
from malot_peft.core.side_models import SideTuneArgs, SideTuneReport

if TYPE_CHECKING:
    import torch

    from malot_peft.core.backbone import LayeredBackbone
    from malot_peft.core.side import SideModule

__all__ = ["SherlInput", "SherlOutput", "anti_redundancy_weights", "sherl", "sherl_network"]

_PAPER = "SHERL: Synthesizing High Accuracy and Efficient Memory for Resource-Limited Transfer Learning (Diao, 2024)"
_EPS = 1e-6


def anti_redundancy_weights(feats: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
    """SHERL's layer weights ``w_l = (g_l/ρ_l) / Σ_m (g_m/ρ_m)``, ``ρ_l = Σ_m ReLU(cos(f_l, f_m))``.

    ``feats``: ``(K, ..., w)`` layer features; ``gates``: ``(K, ..., 1)`` non-negative relevances. Returns
    ``(K, ..., 1)`` weights summing to 1 over ``K``.
    """
    import torch

    unit = torch.nn.functional.normalize(feats, dim=-1)
    cos = torch.einsum("k...w,m...w->...km", unit, unit)  # (..., K, K)
    rho = torch.relu(cos).sum(-1).clamp_min(_EPS)  # (..., K)
    rho = rho.movedim(-1, 0).unsqueeze(-1)  # (K, ..., 1)
    share = (gates + _EPS) / rho
    weights: torch.Tensor = share / share.sum(0, keepdim=True)
    return weights


def sherl_network(backbone: LayeredBackbone, late_layers: int = 1, reduction: int = 8) -> SideModule:
    """Build SHERL for ``backbone`` (frozen by this call) with ``late_layers`` pretrained layers in the late route."""
    import torch
    from torch import nn

    from malot.errors import ToolError
    from malot_peft.core.backbone import frozen_states
    from malot_peft.core.side import SideModule, check_side_args

    width = check_side_args(backbone, reduction)
    layers = backbone.num_layers
    if not 0 <= late_layers < layers:
        raise ToolError(
            f"late_layers={late_layers} must be between 0 and {layers - 1} for a {layers}-layer backbone",
            hint="the early route needs at least one layer",
        )
    split = layers - late_layers

    class SherlNetwork(SideModule):
        """Multi-tiered sensing adapter over the early layers, then the frozen late layers."""

        frozen_route_layers = tuple(range(split, layers))

        def __init__(self) -> None:
            super().__init__(backbone)
            d = backbone.hidden_size
            self.downs = nn.ModuleList(nn.Sequential(nn.Linear(d, width), nn.LayerNorm(width)) for _ in range(split))
            self.relevance = nn.Linear(width, 1)
            nn.init.constant_(self.relevance.bias, 1.0)  # start with every layer relevant (ReLU not dead)
            self.up = nn.Linear(width, d)
            self.gate = nn.Parameter(torch.zeros(()))
            self.last_weights: torch.Tensor | None = None

        def aggregate(self, feats: torch.Tensor) -> torch.Tensor:
            """``Σ_l w_l f_l + f_deep`` over stacked early features ``(split, B, n, w)`` (``l`` below the deepest)."""
            deep, shallow = feats[-1], feats[:-1]
            if shallow.shape[0] == 0:
                return deep
            gates = torch.relu(self.relevance(shallow * deep.unsqueeze(0)))
            weights = anti_redundancy_weights(shallow, gates)
            self.last_weights = weights.detach()
            merged: torch.Tensor = (weights * shallow).sum(0) + deep
            return merged

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            """Early route without autograd, gated injection, late pretrained layers, frozen readout."""
            states = frozen_states(self.backbone, ids, upto=split)[1:]
            feats = torch.stack([down(s) for down, s in zip(self.downs, states, strict=True)])
            h = states[-1] + torch.tanh(self.gate) * self.up(self.aggregate(feats))
            for i in range(split, layers):
                h = self.backbone.layer(i, h)
            return self.backbone.readout(h)

    return SherlNetwork()


class SherlInput(SideTuneArgs):
    """Arguments of the ``sherl`` tool."""

    out: str = Field(description="where to write the SHERL modules (.safetensors)")
    late_layers: int = Field(default=1, ge=0, description="pretrained layers in the late route (frozen weights)")
    reduction: int = Field(default=8, gt=0, description="adapter width = hidden size / reduction")


class SherlOutput(SideTuneReport):
    """Result of the ``sherl`` tool."""

    network: str
    no_backbone_gradient: bool = Field(description="no backbone weight got a gradient; no early layer backpropagated")
    mean_layer_weights: list[float] = Field(description="mean anti-redundancy weight of each shallow early layer")


@tool(
    name="sherl",
    family="peft",
    paper=_PAPER,
    tags=("peft", "memory-efficient", "side-tuning", "fine-tuning"),
    heavy=True,
)
def sherl(args: SherlInput) -> SherlOutput:
    """Train SHERL on a frozen causal LM: anti-redundant early aggregation feeding the last pretrained layers."""
    from malot_peft.core.side import run_side_tool

    result = run_side_tool(
        args,
        lambda b: sherl_network(b, args.late_layers, args.reduction),
        {"method": "sherl", "late_layers": args.late_layers, "reduction": args.reduction},
    )
    weights = getattr(result.side, "last_weights", None)
    per_layer = [] if weights is None else [float(v) for v in weights.mean(dim=(1, 2, 3)).tolist()]
    return SherlOutput(
        network=str(Path(result.path)),
        mean_layer_weights=per_layer,
        **SideTuneReport.fields_of(result),
    )
