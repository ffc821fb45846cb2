"""Shared set-up of the peft claim benchmarks (not a benchmark itself): synthetic token tasks and training helpers.

Sequences of 16 tokens drawn uniformly from 16 symbols. Tokens 0-3 are *keys*; tasks read their counts:

* ``most``: which key occurs most often (4 classes, ties to the lowest key) -- the pre-training (source) task;
* ``least``: which key occurs least often (4 classes) -- needs the same count features, read differently;
* ``pair``: whether key 0 occurs more often than key 1 (2 classes);
* ``parity``: whether token 4 occurs an odd number of times (2 classes);
* ``ends``: whether the first token is larger than the last (2 classes).

A :class:`~malot_peft.core.tiny.TinyTransformer` (d=32, 3 layers) is pre-trained on ``most``; each method then
adapts it to a target task from a fixed number of labelled examples and is scored on 2,048 held-out sequences.
Every method trains for the same number of steps with the same batch size; the learning rates are fixed per kind of
parameter before any result was seen (``LR_NEW`` for new modules, ``LR_FULL`` for full fine-tuning).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

VOCAB, LENGTH, KEYS = 16, 16, 4
D, LAYERS, HEADS, FFN = 32, 3, 2, 64
LR_NEW, LR_FULL, LR_PRETRAIN = 3e-3, 1e-3, 3e-3
CLASSES = {"most": 4, "least": 4, "pair": 2, "parity": 2, "ends": 2}


def labels(task: str, ids: torch.Tensor) -> torch.Tensor:
    """Labels of ``task`` for token ids ``(B, LENGTH)``."""
    counts = torch.stack([(ids == k).sum(1) for k in range(KEYS)], dim=1).float()
    tiebreak = torch.arange(KEYS).float() * 1e-3
    if task == "most":
        return (counts - tiebreak).argmax(1)
    if task == "least":
        return (counts + tiebreak).argmin(1)
    if task == "pair":
        return (counts[:, 0] > counts[:, 1]).long()
    if task == "parity":
        return ((ids == 4).sum(1) % 2).long()
    if task == "ends":
        return (ids[:, 0] > ids[:, -1]).long()
    raise ValueError(f"unknown task {task!r}")


@dataclass
class Split:
    """Token ids and labels."""

    x: torch.Tensor
    y: torch.Tensor


def make_split(task: str, n: int, generator: torch.Generator) -> Split:
    """``n`` random sequences labelled for ``task``."""
    x = torch.randint(0, VOCAB, (n, LENGTH), generator=generator)
    return Split(x, labels(task, x))


def pretrained_backbone(seed: int, steps: int) -> nn.Module:
    """A TinyTransformer pre-trained on the ``most`` task (the source)."""
    from malot_peft.core.tiny import TinyTransformer

    torch.manual_seed(seed)
    model = TinyTransformer(VOCAB, d=D, layers=LAYERS, heads=HEADS, ffn=FFN, max_len=LENGTH, out_dim=CLASSES["most"])
    g = torch.Generator().manual_seed(seed)
    data = make_split("most", 4096, g)
    opt = torch.optim.AdamW(model.parameters(), lr=LR_PRETRAIN, weight_decay=0.0)
    for _ in range(steps):
        pick = torch.randint(0, 4096, (128,), generator=g)
        loss = nn.functional.cross_entropy(model(data.x[pick]), data.y[pick])
        opt.zero_grad()
        loss.backward()
        opt.step()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def fresh_head(model: nn.Module, classes: int, seed: int) -> nn.Module:
    """A deep copy of ``model`` with a new randomly initialised head for ``classes`` classes (trainable)."""
    out = copy.deepcopy(model)
    torch.manual_seed(seed + 1000)
    out.head = nn.Linear(out.hidden_size, classes)  # type: ignore[assignment,arg-type]
    return out


def train(
    forward: Callable[[torch.Tensor], torch.Tensor],
    params: list[nn.Parameter],
    data: Split,
    *,
    steps: int,
    lr: float,
    seed: int,
    batch: int = 64,
) -> list[float]:
    """AdamW on ``params`` for ``steps`` mini-batches of ``data``; returns the losses."""
    g = torch.Generator().manual_seed(seed + 7)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    losses = []
    for _ in range(steps):
        pick = torch.randint(0, len(data.y), (min(batch, len(data.y)),), generator=g)
        loss = nn.functional.cross_entropy(forward(data.x[pick]), data.y[pick])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def accuracy(forward: Callable[[torch.Tensor], torch.Tensor], data: Split) -> float:
    """Held-out accuracy."""
    with torch.no_grad():
        return float((forward(data.x).argmax(-1) == data.y).float().mean())


def trainable(module: nn.Module) -> list[nn.Parameter]:
    """Parameters of ``module`` that require a gradient (each once)."""
    seen: set[int] = set()
    out = []
    for p in module.parameters():
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


def count(params: list[nn.Parameter]) -> int:
    """Number of scalars in ``params``."""
    return sum(int(p.numel()) for p in params)
