"""Diagonal Fisher information of a model's parameters, with labels drawn from the model itself.

Following Matena & Raffel ("Merging Models with Fisher-Weighted Averaging", 2022), the Fisher of a model
``p_θ(y | x)`` is ``F = E_x E_{y ~ p_θ(·|x)} [(∇_θ log p_θ(y | x))²]``: the labels come from the model's own
predictive distribution, not from the data set (that would be the "empirical Fisher"). Its diagonal is estimated
one example at a time (per-example squared gradients, not the square of a batch gradient).

``forward(model, example)`` must return logits whose last dimension is the label set; leading dimensions (for
example sequence positions of a language model) are independent predictions whose log-probabilities add up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal

from malot.errors import ToolError

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["LabelMode", "diagonal_fisher"]

LabelMode = Literal["sample", "expected", "argmax"]
ForwardFn = Callable[["nn.Module", Any], "torch.Tensor"]


def _default_forward(model: nn.Module, example: Any) -> torch.Tensor:
    out: torch.Tensor = model(example)
    return out


def diagonal_fisher(
    model: nn.Module,
    examples: Iterable[Any],
    *,
    forward: ForwardFn | None = None,
    labels: LabelMode = "sample",
    samples_per_example: int = 1,
    seed: int = 0,
    max_examples: int | None = None,
) -> dict[str, torch.Tensor]:
    """Estimate the diagonal Fisher of every trainable parameter of ``model`` (keys as in ``named_parameters``).

    ``labels``: ``"sample"`` draws ``samples_per_example`` labels from the model's predictive distribution (the
    paper's estimator); ``"expected"`` sums over every label weighted by its probability (exact, one backward pass
    per label: for small label sets and tests); ``"argmax"`` uses the most likely label. The model is put in eval
    mode for the estimate and its training flag restored afterwards; gradients it had are left untouched.
    """
    import torch

    fwd = forward or _default_forward
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    if not params:
        raise ToolError("the model has no trainable parameters", hint="set requires_grad on the parameters to merge")
    fisher = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in params.items()}
    generator = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    saved_grads = {n: (p.grad.clone() if p.grad is not None else None) for n, p in params.items()}
    count = 0
    try:
        for i, example in enumerate(examples):
            if max_examples is not None and i >= max_examples:
                break
            logits = fwd(model, example)
            log_probs = torch.log_softmax(logits.float(), dim=-1)
            flat = log_probs.reshape(-1, log_probs.shape[-1])
            targets: list[tuple[torch.Tensor, float]] = []
            if labels == "sample":
                probs = flat.detach().exp()
                for _ in range(samples_per_example):
                    ys = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
                    targets.append((ys, 1.0 / samples_per_example))
            elif labels == "argmax":
                targets.append((flat.detach().argmax(-1), 1.0))
            elif labels == "expected":
                if flat.shape[0] != 1:
                    raise ToolError("labels='expected' needs one prediction per example", hint="use labels='sample'")
                probs = flat.detach().exp()[0]
                targets.extend((torch.tensor([c]), float(probs[c])) for c in range(flat.shape[-1]))
            else:
                raise ToolError(f"unknown label mode {labels!r}", hint="use sample, expected or argmax")
            for j, (ys, weight) in enumerate(targets):
                ll = flat.gather(1, ys.view(-1, 1)).sum()
                grads = torch.autograd.grad(
                    ll, list(params.values()), retain_graph=j < len(targets) - 1, allow_unused=True
                )
                for (n, _), g in zip(params.items(), grads, strict=True):
                    if g is not None:
                        fisher[n] += weight * g.detach().float() ** 2
            count += 1
    finally:
        model.train(was_training)
        for n, p in params.items():
            p.grad = saved_grads[n]
    if count == 0:
        raise ToolError("no examples to estimate the Fisher from", hint="pass at least one example")
    return {n: f / count for n, f in fisher.items()}
