"""``unipt``: Universal Parallel Tuning (Diao et al., CVPR 2024).

Paper: *UniPT: Universal Parallel Tuning for Transfer Learning with Efficient Parameter and Memory* (Haiwen Diao,
Bo Wan, Ying Zhang, Xu Jia, Huchuan Lu, Long Chen). A lightweight network runs *in parallel* to the frozen backbone,
which is executed without autograd. Every layer's output ``b_l`` is downsampled, ``f_l = D_l(b_l)``; the last
layer's is the *anchor* ``a``. The **parallel interaction** module lets the anchor attend to each earlier layer with a
ReLU similarity normalised by its L1 norm (no softmax) plus an identity path: ``m_l = a + ℓ1(ReLU(a f_lᵀ/√w)) f_l``.
The **confidence aggregation** module scores each ``m_l`` (a linear map to one logit per token) and mixes them with a
softmax over layers, ``c_l = softmax_l(s(m_l))``, ``Σ_l c_l = 1``. The result is upsampled and added to the
backbone's final state, which goes through the frozen readout.

What is ours: the equations above are our reading of the paper's two modules (the authors' code, Paranioar/UniPT,
targets vision-language backbones); the upsampler is zero-initialised so training starts at the backbone's
predictions; for causal LMs the interaction is causally masked (a token attends to earlier positions only).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from malot.tools import tool

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
            self.up = nn.Linear(width, d)
            nn.init.zeros_(self.up.weight)
            nn.init.zeros_(self.up.bias)
            self.last_confidence: torch.Tensor | None = None

        def interact(self, anchor: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
            """``a + ℓ1(ReLU(a fᵀ / √w)) f`` for one layer's features ``feats``."""
            sim = torch.relu(anchor @ feats.transpose(-1, -2) / width**0.5)
            if backbone.causal:
                n = sim.shape[-1]
                sim = sim * torch.ones(n, n, device=sim.device).tril()
            weights = sim / (sim.sum(-1, keepdim=True) + 1e-6)
            merged: torch.Tensor = anchor + weights @ feats
            return merged

        def confidence(self, merged: torch.Tensor) -> torch.Tensor:
            """Softmax over layers of each merged feature's score: ``(layers-1, B, n, 1)``, summing to 1."""
            return torch.softmax(self.score(merged), dim=0)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            """Frozen backbone pass, parallel interaction, confidence aggregation, frozen readout."""
            states = frozen_states(self.backbone, ids)[1:]  # the outputs of the layers
            feats = [down(s) for down, s in zip(self.downs, states, strict=True)]
            anchor = feats[-1]
            merged = torch.stack([self.interact(anchor, f) for f in feats[:-1]])
            conf = self.confidence(merged)
            self.last_confidence = conf.detach()
            return self.backbone.readout(states[-1] + self.up((conf * merged).sum(0)))

    return UniPTNetwork()


class UniPTInput(BaseModel):
    """Arguments of the ``unipt`` tool."""

    model: str = Field(description="Hugging Face causal-LM folder laid out like Llama (the frozen backbone)")
    data: str = Field(description="training texts: .txt (one a line) or .jsonl")
    out: str = Field(description="where to write the UniPT network (.safetensors)")
    reduction: int = Field(default=8, gt=0, description="width of the parallel network = hidden size / reduction")
    steps: int = Field(default=100, ge=0)
    lr: float = Field(default=3e-3, gt=0)
    batch_size: int = Field(default=8, gt=0)
    max_length: int = Field(default=64, gt=1)
    seed: int = 0


class UniPTOutput(BaseModel):
    """Result of the ``unipt`` tool."""

    network: str
    trainable_params: int
    backbone_params: int
    backbone_bit_identical: bool
    no_backbone_gradient: bool = Field(description="gradient hooks on every backbone layer never fired")
    activation_bytes_side: int = Field(description="bytes autograd saved for one training batch (UniPT)")
    activation_bytes_full_ft: int = Field(description="the same for full fine-tuning of the backbone")
    mean_confidence_per_layer: list[float] = Field(description="mean confidence of each non-anchor layer")
    loss_first: float | None
    loss_last: float | None


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
        trainable_params=result.trainable,
        backbone_params=result.backbone_params,
        backbone_bit_identical=result.run.backbone_bit_identical,
        no_backbone_gradient=result.run.no_backbone_gradient,
        activation_bytes_side=result.side_bytes,
        activation_bytes_full_ft=result.full_bytes,
        mean_confidence_per_layer=per_layer,
        loss_first=result.run.losses[0] if result.run.losses else None,
        loss_last=result.run.losses[-1] if result.run.losses else None,
    )
