"""Zero-shot classifiers from a knowledge graph: a GCN over the class graph regresses classifier weights (GCNZ).

The survey "Knowledge Graphs for Zero-/Few-shot Learning" (Chen et al., 2021/2023) files this under propagation-based
methods; the method is GCNZ ("Zero-shot Recognition via Semantic Embeddings and Knowledge Graphs", Wang, Ye, Gupta;
CVPR 2018). Every class is a node of a knowledge graph (e.g. WordNet) with its word embedding as input feature. A
two-layer GCN ``Â·LeakyReLU(Â X Θ₁)·Θ₂`` (``Â`` the symmetrically normalised adjacency with self-loops) outputs one
classifier weight vector per class; it is trained so that its L2-normalised outputs on the *seen* classes match the
L2-normalised last-layer weights of a classifier trained on seen data (mean squared error). The unseen classes'
outputs are their zero-shot classifiers: ``ŷ = argmax_c w_cᵀ x``. The paper's part: the regression of classifier
weights through the graph and the loss; the library's (torch-geometric ``GCNConv``, which installs cleanly next to
torch 2.13): the graph convolution. Exact property: two classes with equal embeddings and equal closed
neighbourhoods get identical weights (an unseen class attached to a seen class the same way inherits its classifier).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_fewshot.core.arrays import as_labels, as_matrix

if TYPE_CHECKING:
    import numpy as np
    import torch
    from numpy.typing import NDArray

__all__ = ["KgZeroShotInput", "KgZeroShotOutput", "KgZslResult", "class_graph_gcn", "kg_zero_shot", "train_gcnz"]

_PAPER = "Zero-shot Recognition via Semantic Embeddings and Knowledge Graphs (GCNZ; Wang, Ye, Gupta; CVPR 2018)"


def class_graph_gcn(d_in: int, hidden: int, d_out: int, dropout: float) -> torch.nn.Module:
    """Two ``GCNConv`` layers (torch-geometric) with LeakyReLU(0.2) and dropout, as in GCNZ (shallower)."""
    import torch
    from torch_geometric.nn import GCNConv

    class Gcnz(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = GCNConv(d_in, hidden)
            self.conv2 = GCNConv(hidden, d_out)
            self.dropout = dropout

        def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
            h = torch.nn.functional.leaky_relu(self.conv1(x, edge_index), 0.2)
            h = torch.nn.functional.dropout(h, self.dropout, self.training)
            out: torch.Tensor = self.conv2(h, edge_index)
            return out

    return Gcnz()


@dataclass
class KgZslResult:
    """Predicted (L2-normalised) classifier weights of every class and the training loss curve."""

    weights: NDArray[np.float64]
    losses: list[float]


def train_gcnz(
    embeddings: NDArray[np.float64],
    edges: NDArray[np.int64],
    seen: NDArray[np.int64],
    seen_weights: NDArray[np.float64],
    *,
    hidden: int = 64,
    dropout: float = 0.5,
    steps: int = 300,
    lr: float = 1e-3,
    weight_decay: float = 5e-4,
    seed: int = 0,
) -> KgZslResult:
    """Train the GCN to regress the seen classes' normalised weights; return every class's predicted weights."""
    import numpy as np
    import torch

    from malot_fewshot.core.training import fit_full_batch, seeded

    seeded(seed)
    x = torch.as_tensor(embeddings, dtype=torch.float32)
    pairs = torch.as_tensor(edges, dtype=torch.long).reshape(-1, 2)
    edge_index = torch.cat([pairs, pairs.flip(1)]).T.contiguous()
    target = torch.nn.functional.normalize(torch.as_tensor(seen_weights, dtype=torch.float32), dim=1)
    index = torch.as_tensor(seen, dtype=torch.long)
    net = class_graph_gcn(embeddings.shape[1], hidden, seen_weights.shape[1], dropout)

    def loss() -> torch.Tensor:
        out = torch.nn.functional.normalize(net(x, edge_index), dim=1)
        return ((out[index] - target) ** 2).sum(1).mean()

    net.train()
    losses = fit_full_batch(list(net.parameters()), loss, steps=steps, lr=lr, weight_decay=weight_decay)
    net.eval()
    with torch.no_grad():
        weights = torch.nn.functional.normalize(net(x, edge_index), dim=1).numpy()
    return KgZslResult(weights=np.asarray(weights, dtype=np.float64), losses=losses)


class KgZeroShotInput(BaseModel):
    """Arguments of the ``kg_zero_shot`` tool."""

    class_embeddings: list[list[float]] = Field(description="word embedding of every class (graph node features)")
    edges: list[tuple[int, int]] = Field(description="undirected knowledge-graph edges between class indices")
    seen_classes: list[int] = Field(description="indices of the classes with trained classifiers")
    seen_weights: list[list[float]] = Field(description="classifier weight vector of each seen class, same order")
    features: list[list[float]] | None = Field(default=None, description="instances to classify zero-shot")
    candidates: list[int] | None = Field(default=None, description="classes to choose from (default: unseen ones)")
    hidden: int = Field(default=64, gt=0)
    dropout: float = Field(default=0.5, ge=0, lt=1)
    steps: int = Field(default=300, gt=0)
    lr: float = Field(default=1e-3, gt=0)
    seed: int = 0


class KgZeroShotOutput(BaseModel):
    """Result of the ``kg_zero_shot`` tool."""

    class_weights: list[list[float]]
    predictions: list[int] | None
    final_loss: float


@tool(
    name="kg_zero_shot",
    family="fewshot",
    paper=_PAPER,
    tags=("zero-shot", "knowledge graph", "gcn", "unseen classes", "needs:class graph+embeddings+seen classifiers"),
    heavy=True,
)
def kg_zero_shot(args: KgZeroShotInput) -> KgZeroShotOutput:
    """Predict classifier weights for unseen classes with a GCN over a class knowledge graph (GCNZ).

    Trains on the seen classes' classifier weights; optionally classifies ``features`` among ``candidates``.
    """
    import numpy as np

    emb = as_matrix(args.class_embeddings, "class_embeddings", min_rows=2)
    n_classes = len(emb)
    seen = as_labels(args.seen_classes, "seen_classes", n_classes=n_classes)
    if len(set(seen.tolist())) != len(seen):
        raise ToolError("seen_classes lists a class twice", hint="give each seen class once")
    weights = as_matrix(args.seen_weights, "seen_weights")
    if len(weights) != len(seen):
        raise ToolError(f"{len(weights)} seen_weights rows for {len(seen)} seen classes", hint="one row per class")
    edges = np.asarray(args.edges, dtype=np.int64).reshape(-1, 2)
    if len(edges) and (edges.min() < 0 or edges.max() >= n_classes):
        raise ToolError(f"an edge names a class outside 0..{n_classes - 1}", hint="edges index class_embeddings rows")
    result = train_gcnz(
        emb,
        edges,
        seen,
        weights,
        hidden=args.hidden,
        dropout=args.dropout,
        steps=args.steps,
        lr=args.lr,
        seed=args.seed,
    )
    predictions = None
    if args.features is not None:
        feats = as_matrix(args.features, "features", cols=weights.shape[1])
        unseen = np.setdiff1d(np.arange(n_classes), seen)
        cand = as_labels(args.candidates, "candidates", n_classes=n_classes) if args.candidates else unseen
        if len(cand) == 0:
            raise ToolError("no candidate classes to choose from", hint="every class is seen: pass candidates")
        predictions = cand[(feats @ result.weights[cand].T).argmax(1)].tolist()
    return KgZeroShotOutput(
        class_weights=result.weights.round(6).tolist(), predictions=predictions, final_loss=result.losses[-1]
    )
