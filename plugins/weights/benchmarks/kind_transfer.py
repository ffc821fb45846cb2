"""KIND claim: after class-gated pre-training, transferring only the learngenes (with fresh tailors) to a task with a
domain shift works at least as well as transferring the whole pre-trained model, and better than training from
scratch, while moving fewer parameters.

Synthetic set-up: inputs ``x ∈ R⁸``; class ``c`` has targets ``y = g(x) + h_c(x)`` with ``g`` a shared non-linear
map and ``h_c`` a class-specific linear map (large: class-specific knowledge). A two-layer model in KIND form (every
matrix ``U·diag(σ)·Vᵀ`` split into learngene components and per-class tailors, tailors gated by the class) is
pre-trained on 8 classes. Each downstream task is one *new* class (new ``h``; few samples). Compared, each
fine-tuned for the same steps on the downstream class:

* ``kind``: learngenes transferred, tailors re-initialised;
* ``full_transfer``: the whole trained ancestor transferred (learngenes + the trained tailors of the pre-training
  class whose gated model fits the downstream samples best; a model that was actually trained), all of it
  fine-tuned: the real full-model transfer baseline;
* ``full``: the whole KIND model collapsed to plain weights with every tailor switched on at once (learngene + all
  tailors: a combination never trained as such, so a weak baseline; kept for comparison with earlier runs);
* ``conventional``: the same architecture pre-trained the ordinary way (no gates) on the 8 classes;
* ``scratch``: random initialisation;
* (details only) ``learngene_plain``: a plain model whose weights are the learngenes alone.

    python plugins/weights/benchmarks/kind_transfer.py --quick --out kind_transfer.json

Top-level figures (downstream test MSE, means over new classes and seeds): ``loss_ratio_vs_full_transfer``,
``loss_ratio_vs_full``, ``loss_ratio_vs_conventional``, ``loss_ratio_vs_scratch``, ``loss_ratio_vs_learngene_plain``
(kind / baseline; below 1 reproduces the claim), ``transferred_parameter_ratio`` (learngene parameters / all
parameters).
"""

from __future__ import annotations

import copy
import statistics
import time
from typing import Any

from malot.benchmarking import benchmark_args, summarize, write_result

DIM, HIDDEN, OUT, CLASSES, NEW = 8, 32, 8, 8, 4
SPECIFIC_SCALE = 0.5
FEW = 16
GENE1, TAILOR1, GENE2, TAILOR2 = 8, 16, 8, 8  # learngenes can hold a full-rank shared map (rank ≤ 8)


def _kind_model() -> Any:
    import torch
    from malot_weights.kind import kind_linear

    class KindNet(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.l1 = kind_linear(DIM, HIDDEN, n_learngene=GENE1, n_tailor=TAILOR1, n_classes=CLASSES)
            self.l2 = kind_linear(HIDDEN, OUT, n_learngene=GENE2, n_tailor=TAILOR2, n_classes=CLASSES)

        def forward(self, x: torch.Tensor, classes: torch.Tensor | None = None) -> torch.Tensor:
            out: torch.Tensor = self.l2(torch.tanh(self.l1(x, classes)), classes)
            return out

    return KindNet()


def _plain() -> Any:
    import torch

    return torch.nn.Sequential(torch.nn.Linear(DIM, HIDDEN), torch.nn.Tanh(), torch.nn.Linear(HIDDEN, OUT))


def _fit(model: Any, x: Any, y: Any, steps: int, lr: float, classes: Any = None) -> None:
    import torch

    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    for _ in range(steps):
        pred = model(x, classes) if classes is not None else model(x)
        loss = torch.nn.functional.mse_loss(pred, y)
        opt.zero_grad()
        loss.backward()
        opt.step()


def _run(seed: int, quick: bool) -> dict[str, Any]:
    import torch

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    shared_in, shared_out = torch.randn(DIM, 16, generator=g), torch.randn(16, OUT, generator=g) / 2
    specific = torch.randn(CLASSES + NEW, DIM, OUT, generator=g) / DIM**0.5 * SPECIFIC_SCALE

    def target(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x @ shared_in) @ shared_out + torch.einsum("nd,ndo->no", x, specific[c])

    n_pre = 2048
    x_pre = torch.randn(n_pre, DIM, generator=g)
    c_pre = torch.randint(CLASSES, (n_pre,), generator=g)
    y_pre = target(x_pre, c_pre)
    pre_steps = 600 if quick else 2000
    kind = _kind_model()
    _fit(kind, x_pre, y_pre, pre_steps, 5e-3, classes=c_pre)
    conventional = _plain()
    _fit(conventional, x_pre, y_pre, pre_steps, 5e-3)

    def collapsed(learngene_only: bool = False, classes: list[int] | None = None) -> Any:
        plain = _plain()
        with torch.no_grad():
            for layer, index in ((kind.l1, 0), (kind.l2, 2)):
                factors = layer.to_factors()
                plain[index].weight.copy_(factors.learngene() if learngene_only else factors.weight(classes))
                plain[index].bias.copy_(layer.bias)
        return plain

    steps = 100 if quick else 300
    rows = []
    for new_class in range(CLASSES, CLASSES + NEW):
        cls = torch.full((FEW,), new_class)
        x_few = torch.randn(FEW, DIM, generator=g)
        x_test = torch.randn(512, DIM, generator=g)
        y_few, y_test = target(x_few, cls), target(x_test, torch.full((512,), new_class))
        row: dict[str, float] = {"class": float(new_class)}
        transferred = copy.deepcopy(kind)
        for layer in (transferred.l1, transferred.l2):
            layer.reset_tailors(torch.Generator().manual_seed(seed * 100 + new_class))
            layer.tailor_class.zero_()  # the downstream task is one class: every tailor serves it
        zero = torch.zeros(FEW, dtype=torch.int64)
        _fit(transferred, x_few, y_few, steps, 5e-3, classes=zero)
        with torch.no_grad():
            row["kind"] = float(
                torch.nn.functional.mse_loss(transferred(x_test, torch.zeros(512, dtype=torch.int64)), y_test)
            )
        with torch.no_grad():
            fits = [
                float(torch.nn.functional.mse_loss(kind(x_few, torch.full((FEW,), c)), y_few)) for c in range(CLASSES)
            ]
        ancestor_class = min(range(CLASSES), key=fits.__getitem__)
        row["full_transfer_class"] = float(ancestor_class)
        for name, model in (
            ("full_transfer", collapsed(classes=[ancestor_class])),
            ("full", collapsed()),
            ("learngene_plain", collapsed(learngene_only=True)),
            ("conventional", copy.deepcopy(conventional)),
            ("scratch", _plain()),
        ):
            _fit(model, x_few, y_few, steps, 5e-3)
            with torch.no_grad():
                row[name] = float(torch.nn.functional.mse_loss(model(x_test), y_test))
        rows.append(row)
    gene = sum(p.numel() for layer in (kind.l1, kind.l2) for p in layer.gene_parameters())
    total = sum(p.numel() for p in kind.parameters())
    return {"rows": rows, "transferred_parameter_ratio": gene / total}


def main() -> None:
    """Run the benchmark and write one JSON object."""
    args = benchmark_args(__doc__, default_out="kind_transfer.json", seeds=5, quick_seeds=2)
    start = time.perf_counter()
    runs = [_run(seed, args.quick) for seed in args.seed_list]
    rows = [row for run in runs for row in run["rows"]]

    def mean(key: str) -> float:
        return statistics.mean(r[key] for r in rows)

    baselines = ("full_transfer", "full", "conventional", "scratch", "learngene_plain")
    per_seed = {
        b: summarize([statistics.mean(r["kind"] / r[b] for r in run["rows"]) for run in runs]) for b in baselines
    }
    write_result(
        args.out,
        {
            **{f"loss_ratio_vs_{b}": mean("kind") / mean(b) for b in baselines},
            "transferred_parameter_ratio": runs[0]["transferred_parameter_ratio"],
        },
        details={
            "quick": args.quick,
            "seeds": args.seed_list,
            "mean_loss": {k: mean(k) for k in ("kind", *baselines)},
            "per_class_loss_ratio_over_seeds": per_seed,
            "runs": runs,
            "seconds": time.perf_counter() - start,
        },
    )


if __name__ == "__main__":
    main()
