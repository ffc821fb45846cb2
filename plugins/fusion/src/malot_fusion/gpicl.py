"""General-Purpose In-Context Learning (Kirsch, Harrison, Sohl-Dickstein, Metz, "General-Purpose In-Context Learning
by Meta-Learning Transformers").

A transformer is meta-trained on sequences that each come from a *new* task: a base classification dataset whose
inputs are passed through a random linear projection and whose labels are randomly permuted. The sequence shows
``(x_1, ·), (x_2, y_1), (x_3, y_2), ...``: at step ``i`` the model sees ``x_i`` and the previous label and predicts
``y_i``, so it must learn each task from the examples in its context. With enough distinct tasks it stops memorising
tasks and learns a general learning algorithm, which then works in context on unseen tasks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["GaussianTaskSource", "ICLTransformer", "TaskBatch", "in_context_accuracy", "meta_train"]


@dataclass
class TaskBatch:
    """Model inputs ``(batch, length, dim + classes)`` (``x_i`` with the one-hot ``y_{i-1}``) and labels ``y``."""

    inputs: torch.Tensor
    labels: torch.Tensor


class GaussianTaskSource:
    """A base dataset (a fixed mixture of ``classes`` Gaussians in ``dim`` dimensions) and its random tasks.

    Each task draws a projection ``A ~ N(0, 1/dim)`` and a label permutation; ``n_tasks`` limits training to a fixed
    pool of tasks (``None`` draws a fresh task for every sequence, the paper's regime that generalises).
    """

    def __init__(self, dim: int = 8, classes: int = 4, spread: float = 0.35, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.dim = dim
        self.classes = classes
        self.spread = spread
        self.means = torch.randn(classes, dim, generator=generator)

    def _task(self, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        projection = torch.randn(self.dim, self.dim, generator=generator) / math.sqrt(self.dim)
        permutation = torch.randperm(self.classes, generator=generator)
        return projection, permutation

    def sample(self, batch: int, length: int, generator: torch.Generator, n_tasks: int | None = None) -> TaskBatch:
        """``batch`` sequences of ``length`` examples, each sequence from one random task."""
        base_labels = torch.randint(self.classes, (batch, length), generator=generator)
        x = self.means[base_labels] + self.spread * torch.randn(batch, length, self.dim, generator=generator)
        inputs = torch.zeros(batch, length, self.dim + self.classes)
        labels = torch.empty(batch, length, dtype=torch.long)
        for b in range(batch):
            if n_tasks is None:
                projection, permutation = self._task(generator)
            else:
                task_id = int(torch.randint(n_tasks, (1,), generator=generator))
                projection, permutation = self._task(torch.Generator().manual_seed(1_000_003 * (task_id + 1)))
            labels[b] = permutation[base_labels[b]]
            inputs[b, :, : self.dim] = x[b] @ projection.T
        inputs[:, 1:, self.dim :] = nn.functional.one_hot(labels[:, :-1], self.classes).float()
        return TaskBatch(inputs=inputs, labels=labels)


class ICLTransformer(nn.Module):
    """A small causal transformer that maps ``(x_i, y_{i-1})`` sequences to logits for ``y_i``."""

    def __init__(
        self, in_dim: int, classes: int, d: int = 64, layers: int = 2, heads: int = 4, max_len: int = 128
    ) -> None:
        super().__init__()
        self.embed = nn.Linear(in_dim, d)
        self.position = nn.Parameter(torch.zeros(max_len, d))
        layer = nn.TransformerEncoderLayer(d, heads, 2 * d, dropout=0.0, batch_first=True, norm_first=True)
        self.body = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d, classes)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, length, classes)``; position ``i`` only sees positions ``<= i``."""
        length = inputs.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(length, device=inputs.device)
        h = self.embed(inputs) + self.position[:length]
        out: torch.Tensor = self.head(self.body(h, mask=mask, is_causal=True))
        return out


def meta_train(
    model: ICLTransformer,
    source: GaussianTaskSource,
    *,
    steps: int,
    batch: int = 64,
    length: int = 32,
    lr: float = 1e-3,
    n_tasks: int | None = None,
    seed: int = 0,
) -> list[float]:
    """Meta-train on random-task sequences (next-label cross-entropy at every position); returns the losses."""
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    losses: list[float] = []
    model.train()
    for _ in range(steps):
        data = source.sample(batch, length, generator, n_tasks)
        logits = model(data.inputs)
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), data.labels.reshape(-1))
        optimiser.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimiser.step()
        losses.append(float(loss.detach()))
    model.eval()
    return losses


@torch.no_grad()
def in_context_accuracy(
    model: ICLTransformer, source: GaussianTaskSource, *, sequences: int = 256, length: int = 32, seed: int = 12345
) -> torch.Tensor:
    """Accuracy at each position ``(length,)`` on fresh tasks (unseen projections and permutations)."""
    data = source.sample(sequences, length, torch.Generator().manual_seed(seed))
    predictions = model(data.inputs).argmax(dim=-1)
    accuracy: torch.Tensor = (predictions == data.labels).float().mean(dim=0)
    return accuracy
