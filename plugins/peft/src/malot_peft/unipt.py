"""``unipt``: Universal Parallel Tuning (Diao et al., CVPR 2024).

Paper: *UniPT: Universal Parallel Tuning for Transfer Learning with Efficient Parameter and Memory* (Haiwen Diao,
Bo Wan, Ying Zhang, Xu Jia, Huchuan Lu, Long Chen). A lightweight network runs *in parallel* to the frozen backbone,
which is executed without autograd. Every layer's output ``b_l`` is downsampled, ``f_l = LN(D_l b_l)``; the last
layer's is the *anchor* ``a``. The **parallel interaction** module lets the anchor's tokens attend to each earlier
layer's tokens with a ReLU similarity normalised by its L1 norm (no softmax) plus an identity path:
``m_l = (ℓ1(ReLU(a f_lᵀ)) + I) f_l``. The **confidence aggregation** module scores each layer from the pooled anchor
and pooled layer features, ``c_l = softmax_l(fc(ā ⊙ f̄_l))`` (``Σ_l c_l = 1``), and the output is
``a + P(Σ_l c_l m_l)`` (``P``: linear + LayerNorm), upsampled by ``U = Linear ∘ ReLU``.

What is ours: the upsampled output is added to the backbone's final state before the frozen readout, with ``U``
zero-initialised so training starts at the backbone's predictions (the paper's vision-language heads consume the
output directly); for causal LMs the interaction is causally masked and the pooling is a running mean over the
prefix, so no token sees later ones. Written from the paper and a reading of the authors' code (Paranioar/UniPT).
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

__all__ = ["UniPTInput", "UniPTOutput", "unipt", "unipt_network"]

_PAPER = (
    "UniPT: Universal Parallel Tuning for Transfer Learning with Efficient Parameter and Memory (Diao et al., 2024)"
)


def unipt_network(backbone: LayeredBackbone, reduction: int = 8) -> SideModule:
    """Build the UniPT parallel network for ``backbone`` (frozen by this call); see the module docstring."""
    import torch
    from torch import nn

    from malot_peft.core.backbone import frozen_states
    from malot_peft.core.side import SideModule, check_side_args

    width = check_side_args(backbone, reduction)
    layers = backbone.num_layers
    if layers < 2:
        from malot.errors import ToolError

        raise ToolError("UniPT needs a backbone with at least two layers", hint="use a deeper model")

    class UniPTNetwork(SideModule):
        """Downsamplers, anchor cross-interaction and confidence aggregation over the frozen layers."""

        def __init__(self) -> None:
            super().__init__(backbone)
            d = backbone.hidden_size
            self.downs = nn.ModuleList(nn.Sequential(nn.Linear(d, width), nn.LayerNorm(width)) for _ in range(layers))
            self.score = nn.Linear(width, 1)
            self.project = nn.Sequential(nn.Linear(width, width), nn.LayerNorm(width))
            upsample = nn.Linear(width, d)
            nn.init.zeros_(upsample.weight)
            nn.init.zeros_(upsample.bias)
            self.up = nn.Sequential(nn.ReLU(), upsample)
            self.last_confidence: torch.Tensor | None = None

        def interact(self, anchor: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
            """``(ℓ1(ReLU(a fᵀ)) + I) f`` for one layer's features ``feats``."""
            sim = torch.relu(anchor @ feats.transpose(-1, -2))
            n = sim.shape[-1]
            if backbone.causal:
                sim = sim * torch.ones(n, n, device=sim.device).tril()
            weights = sim / (sim.sum(-1, keepdim=True) + 1e-8)
            merged: torch.Tensor = weights @ feats + feats
            return merged

        def pool(self, feats: torch.Tensor) -> torch.Tensor:
            """Mean over tokens: a running mean over the prefix for causal models, ``(B, n, w)`` or ``(B, 1, w)``."""
            if backbone.causal:
                steps = torch.arange(1, feats.shape[-2] + 1, device=feats.device, dtype=feats.dtype)
                return feats.cumsum(-2) / steps.unsqueeze(-1)
            return feats.mean(-2, keepdim=True)

        def confidence(self, anchor: torch.Tensor, layer_feats: list[torch.Tensor]) -> torch.Tensor:
            """Softmax over layers of ``fc(ā ⊙ f̄_l)``: ``(layers-1, B, n or 1, 1)``, summing to 1 over layers."""
            pooled = self.pool(anchor)
            scores = torch.stack([self.score(pooled * self.pool(f)) for f in layer_feats])
            return torch.softmax(scores, dim=0)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            """Frozen backbone pass, parallel interaction, confidence aggregation, frozen readout."""
            states = frozen_states(self.backbone, ids)[1:]  # the outputs of the layers
            feats = [down(s) for down, s in zip(self.downs, states, strict=True)]
            anchor = feats[-1]
            merged = torch.stack([self.interact(anchor, f) for f in feats[:-1]])
            conf = self.confidence(anchor, feats[:-1])
            self.last_confidence = conf.detach()
            out = anchor + self.project((conf * merged).sum(0))
            return self.backbone.readout(states[-1] + self.up(out))

    return UniPTNetwork()


class UniPTInput(SideTuneArgs):
    """Arguments of the ``unipt`` tool."""

    out: str = Field(description="where to write the UniPT network (.safetensors)")
    reduction: int = Field(default=8, gt=0, description="width of the parallel network = hidden size / reduction")


class UniPTOutput(SideTuneReport):
    """Result of the ``unipt`` tool."""

    network: str
    mean_confidence_per_layer: list[float] = Field(description="mean confidence of each non-anchor layer")


@tool(
    name="unipt",
    family="peft",
    paper=_PAPER,
    tags=("peft", "memory-efficient", "side-tuning", "fine-tuning"),
    heavy=True,
)
def unipt(args: UniPTInput) -> UniPTOutput:
    """Train a UniPT parallel network on a frozen causal LM: anchor-layer interaction + confidence aggregation."""
    from malot_peft.core.side import run_side_tool

    result = run_side_tool(args, lambda b: unipt_network(b, args.reduction), {"method": "unipt"})
    conf = getattr(result.side, "last_confidence", None)
    per_layer = [] if conf is None else [float(v) for v in conf.mean(dim=(1, 2, 3)).tolist()]
    return UniPTOutput(
        network=str(Path(result.path)),
        mean_confidence_per_layer=per_layer,
        **SideTuneReport.fields_of(result),
    )
