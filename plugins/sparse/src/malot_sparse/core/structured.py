"""Structured (channel) pruning of MLPs with torch-pruning: shrink hidden widths, drop hidden layers, count FLOPs.

torch-pruning's dependency graph removes a hidden unit from a layer's output *and* from the next layer's input in
one step; its ``MagnitudeImportance`` (L1 over the coupled group) ranks the units. These helpers are what TAS's
baseline and N2N's layer-shrink action use.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING

from malot.errors import ToolError

if TYPE_CHECKING:
    from torch import nn

__all__ = ["drop_hidden_layers", "mlp_flops", "mlp_widths", "shrink_widths"]


def mlp_widths(model: nn.Module) -> list[int]:
    """Hidden widths of a plain MLP (the out-features of every linear layer but the last)."""
    from malot_sparse.core.mlp import linear_layers

    return [layer.out_features for layer in linear_layers(model)[:-1]]


def mlp_flops(in_dim: int, widths: Sequence[int], classes: int) -> int:
    """Multiply-accumulates of one forward pass of a plain MLP: ``Σ in_l · out_l`` over its linear layers."""
    dims = [in_dim, *widths, classes]
    return sum(a * b for a, b in itertools.pairwise(dims))


def shrink_widths(model: nn.Sequential, widths: Sequence[int]) -> nn.Sequential:
    """A copy of ``model`` whose hidden layers keep the ``widths[i]`` units of largest L1 group magnitude.

    Uses torch-pruning's dependency graph, so the next layer's inputs are removed with each unit.
    """
    import torch
    import torch_pruning as tp

    from malot_sparse.core.mlp import linear_layers

    pruned = copy.deepcopy(model)
    layers = linear_layers(pruned)
    if len(widths) != len(layers) - 1:
        raise ToolError(f"got {len(widths)} widths for {len(layers) - 1} hidden layers")
    graph = tp.DependencyGraph().build_dependency(pruned, example_inputs=torch.zeros(1, layers[0].in_features))
    importance = tp.importance.MagnitudeImportance(p=1)
    for layer, width in zip(layers[:-1], widths, strict=True):
        if not 0 < width <= layer.out_features:
            raise ToolError(f"cannot shrink a layer of {layer.out_features} units to {width}")
        drop = layer.out_features - width
        if drop == 0:
            continue
        group = graph.get_pruning_group(layer, tp.prune_linear_out_channels, idxs=list(range(layer.out_features)))
        scores = importance(group)
        idxs = scores.argsort()[:drop].tolist()
        graph.get_pruning_group(layer, tp.prune_linear_out_channels, idxs=idxs).prune()
    return pruned


def drop_hidden_layers(model: nn.Sequential, keep: Sequence[bool]) -> nn.Sequential:
    """A copy of a plain MLP without the hidden layers whose ``keep`` flag is false.

    A hidden layer ``i`` (``Linear`` + ``ReLU``) can only be removed when its input and output widths agree, so the
    network stays well-formed; asking to remove another one is an error.
    """
    from torch import nn

    from malot_sparse.core.mlp import linear_layers

    layers = linear_layers(model)
    hidden = layers[:-1]
    if len(keep) != len(hidden):
        raise ToolError(f"got {len(keep)} keep flags for {len(hidden)} hidden layers")
    modules: list[nn.Module] = []
    for layer, flag in zip(hidden, keep, strict=True):
        if not flag:
            if layer.in_features != layer.out_features:
                raise ToolError(f"a hidden layer {layer.in_features}->{layer.out_features} cannot be removed")
            continue
        modules += [copy.deepcopy(layer), nn.ReLU()]
    modules.append(copy.deepcopy(layers[-1]))
    return nn.Sequential(*modules)
