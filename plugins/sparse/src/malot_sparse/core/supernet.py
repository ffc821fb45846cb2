"""TAS's search space for MLPs: hidden layers with learnable width distributions and a depth distribution.

Imported lazily by :mod:`malot_sparse.tas` (it imports torch at module level). See that module for the method.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["TasSupernet", "channel_interpolate"]


def channel_interpolate(features: torch.Tensor, width: int) -> torch.Tensor:
    """CW: resize the channel axis of ``(batch, c)`` features to ``width`` by adaptive average pooling."""
    if features.shape[1] == width:
        return features
    return F.adaptive_avg_pool1d(features.unsqueeze(1), width).squeeze(1)


class TasSupernet(nn.Module):
    """An MLP with learnable width distributions per hidden layer and a depth distribution (TAS's search space)."""

    def __init__(
        self, in_dim: int, width: int, layers: int, classes: int, fractions: Sequence[float], depths: Sequence[int]
    ) -> None:
        super().__init__()
        self.in_dim, self.width, self.classes = in_dim, width, classes
        self.choices = sorted({max(1, round(f * width)) for f in fractions})
        self.depths = sorted(set(depths))
        dims = [in_dim] + [width] * layers
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(dims))
        self.head = nn.Linear(width, classes)
        self.width_logits = nn.Parameter(torch.zeros(layers, len(self.choices)))
        self.depth_logits = nn.Parameter(torch.zeros(len(self.depths)))
        self.tau = 1.0
        self.sampled = 2

    def arch_parameters(self) -> list[nn.Parameter]:
        """α (widths) and β (depth)."""
        return [self.width_logits, self.depth_logits]

    def weight_parameters(self) -> list[nn.Parameter]:
        """The network weights."""
        return [p for name, p in self.named_parameters() if not name.endswith("_logits")]

    def _mix(self, logits: torch.Tensor, options: list[torch.Tensor], hard: bool) -> torch.Tensor:
        if hard:
            return options[int(logits.argmax())]
        probs = F.gumbel_softmax(F.log_softmax(logits, dim=0), tau=self.tau, hard=False, dim=0)
        top = probs.topk(min(self.sampled, len(options))).indices
        weights = probs[top] / probs[top].sum()
        return sum((w * options[int(i)] for w, i in zip(weights, top, strict=True)), torch.zeros_like(options[0]))

    def forward(self, x: torch.Tensor, hard: bool = False) -> torch.Tensor:
        h = x
        at_depth: list[torch.Tensor] = []
        for index, layer in enumerate(self.hidden):
            out = F.relu(layer(h))
            options = [channel_interpolate(out[:, :c], self.width) for c in self.choices]
            h = self._mix(self.width_logits[index], options, hard)
            if index + 1 in self.depths:
                at_depth.append(h)
        return self.head(self._mix(self.depth_logits, at_depth, hard))  # type: ignore[no-any-return]

    def expected_flops(self) -> torch.Tensor:
        """``E[F]`` under the current width and depth distributions (exact: the choices are independent)."""
        choices = torch.tensor(self.choices, dtype=torch.float32)
        widths = F.softmax(self.width_logits, dim=1) @ choices  # E[c_i]
        depth_p = F.softmax(self.depth_logits, dim=0)
        total = torch.zeros(())
        previous = torch.tensor(float(self.in_dim))
        for index in range(len(self.hidden)):
            reach = sum((p for p, d in zip(depth_p, self.depths, strict=True) if d >= index + 1), torch.zeros(()))
            total = total + reach * previous * widths[index]
            previous = widths[index]
        for p, d in zip(depth_p, self.depths, strict=True):
            total = total + p * widths[d - 1] * self.classes
        return total

    def argmax_arch(self) -> tuple[list[int], int]:
        """The most likely widths of the layers in use and the most likely depth."""
        depth = self.depths[int(self.depth_logits.argmax())]
        widths = [self.choices[int(i)] for i in self.width_logits.argmax(dim=1)[:depth]]
        return widths, depth
