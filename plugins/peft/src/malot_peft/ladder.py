"""``ladder_side_tune``: Ladder Side-Tuning (Sung, Cho and Bansal, NeurIPS 2022).

Paper: *LST: Ladder Side-Tuning for Parameter and Memory Efficient Transfer Learning*. A small *side network* of
width ``d/r`` (``r`` = ``reduction``) runs beside the frozen backbone. It reads the backbone's intermediate states
through *ladders*: at layer ``i``, ``h_i = μ_i · down_i(b_i) + (1 − μ_i) · f_i(h_{i−1})`` with a learned gate
``μ_i = σ(α_i / T)`` (``T = 0.1``, Sec. 2.2), where ``b_i`` is backbone layer ``i``'s output, ``down_i`` a linear
downsampler and ``f_i`` a side transformer block. The backbone runs without autograd, so training stores no
backbone activations and backpropagates through the side network only: that is where the memory saving comes from.

What is ours: the paper initialises the side blocks by structurally pruning the backbone's weights (Fisher
importance); we initialise them randomly (not implemented: pruning-based init, and dropping side layers). The side
output is upsampled (zero-initialised) and added to the backbone's final state before the frozen readout (final norm
and LM head), so training starts from the backbone's own predictions. Everything here is written for this plugin
(the paper's code, ylsung/Ladder-Side-Tuning, targets T5/CLIP).
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

__all__ = ["LadderInput", "LadderOutput", "ladder_side_network", "ladder_side_tune"]

_PAPER = "LST: Ladder Side-Tuning for Parameter and Memory Efficient Transfer Learning (Sung et al., NeurIPS 2022)"


def ladder_side_network(backbone: LayeredBackbone, reduction: int = 8, temperature: float = 0.1) -> SideModule:
    """Build the ladder side network of ``backbone`` (frozen by this call); see the module docstring."""
    import torch
    from torch import nn

    from malot_peft.core.backbone import frozen_states
    from malot_peft.core.side import SideModule, check_side_args
    from malot_peft.core.tiny import TinyBlock

    width = check_side_args(backbone, reduction)
    if temperature <= 0:
        from malot.errors import ToolError

        raise ToolError(f"temperature must be positive (got {temperature})", hint="the paper uses 0.1")
    layers = backbone.num_layers
    heads = 2 if width % 2 == 0 and width >= 4 else 1

    class LadderSideNetwork(SideModule):
        """Side blocks of width d/r fed by gated ladders from every backbone layer."""

        def __init__(self) -> None:
            super().__init__(backbone)
            d = backbone.hidden_size
            self.temperature = temperature
            self.downs = nn.ModuleList(nn.Linear(d, width) for _ in range(layers + 1))
            self.alpha = nn.Parameter(torch.zeros(layers))
            self.blocks = nn.ModuleList(TinyBlock(width, heads, 2 * width, backbone.causal) for _ in range(layers))
            self.up = nn.Linear(width, d)
            nn.init.zeros_(self.up.weight)
            nn.init.zeros_(self.up.bias)

        def gates(self) -> torch.Tensor:
            """The ladder gates ``μ_i = σ(α_i / T)``."""
            return torch.sigmoid(self.alpha / self.temperature)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            """Frozen backbone pass, then the side network, then the frozen readout."""
            states = frozen_states(self.backbone, ids)
            mu = self.gates()
            h = self.downs[0](states[0])
            for i in range(layers):
                h = mu[i] * self.downs[i + 1](states[i + 1]) + (1 - mu[i]) * self.blocks[i](h)
            return self.backbone.readout(states[-1] + self.up(h))

    return LadderSideNetwork()


class LadderInput(SideTuneArgs):
    """Arguments of the ``ladder_side_tune`` tool."""

    out: str = Field(description="where to write the side network (.safetensors)")
    reduction: int = Field(default=8, gt=0, description="side width = hidden size / reduction")
    temperature: float = Field(default=0.1, gt=0, description="ladder gate temperature T")


class LadderOutput(SideTuneReport):
    """Result of the ``ladder_side_tune`` tool."""

    side_network: str
    gates: list[float] = Field(description="ladder gates μ_i after training")


@tool(
    name="ladder_side_tune",
    family="peft",
    paper=_PAPER,
    tags=("peft", "memory-efficient", "side-tuning", "fine-tuning"),
    heavy=True,
)
def ladder_side_tune(args: LadderInput) -> LadderOutput:
    """Train a Ladder Side-Tuning network on a frozen causal LM: no backbone backprop, low training memory.

    Reports the autograd-saved activation bytes of one batch for LST and for full fine-tuning of the same model.
    """
    from malot_peft.core.side import run_side_tool

    result = run_side_tool(
        args,
        lambda backbone: ladder_side_network(backbone, args.reduction, args.temperature),
        {"method": "lst", "reduction": args.reduction, "temperature": args.temperature},
    )
    side = result.side
    return LadderOutput(
        side_network=str(Path(result.path)),
        gates=[float(g) for g in side.gates().tolist()],  # type: ignore[operator]
        **SideTuneReport.fields_of(result),
    )
