"""Reprogramming-tickets claim (Misra et al., 2023): lottery tickets are less calibrated than their dense model
under both linear probing (LP) and input prompting (VP), and VP on a ticket can fall well below VP on the dense
model although both reach similar source accuracy.

Synthetic set-up: a 20-200-100-10 MLP is trained on a 10-class source task (labels from a random teacher MLP). IMP
(p = 50% per round, rewinding to θ₀) gives lottery tickets at 87.5% (3 rounds) and 96.9% (5 rounds) sparsity, each
trained on the source task. Two target tasks: *related* (a second random teacher on the same inputs, 5 classes) and
*shifted* (the source teacher's classes merged into 5 groups, on rescaled inputs whose last 4 features are missing,
so VP pads them with its prompt). LP trains a linear head on frozen penultimate features; VP trains an additive
input prompt with frequency label mapping. Accuracy and ECE (15 bins) on held-out target data.

    python plugins/sparse/benchmarks/reprogram_claim.py --quick --out reprogram_claim.json

Top-level figures (means over seeds and both targets): accuracy and ECE of LP/VP on the dense model and the
tickets, ``ece_ticket_minus_dense_lp`` / ``_vp`` (above 0 reproduces the calibration claim) and
``vp_acc_dense_minus_ticket`` (above 0: tickets reprogram worse). Quick mode runs only the 87.5% ticket.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from malot.benchmarking import benchmark_args, summarize, write_result

DIM, CLASSES, TARGET_CLASSES, WIDTHS = 20, 10, 5, [200, 100]


def _teacher(g: Any, classes: int) -> Any:
    import torch

    w1 = torch.randn(DIM, 64, generator=g) / DIM**0.5
    w2 = torch.randn(64, classes, generator=g)
    return lambda x: (torch.tanh(x @ w1) @ w2).argmax(dim=1)


def _run(seed: int, quick: bool) -> dict[str, Any]:
    import torch
    from malot_sparse.core.mlp import accuracy, build_mlp, train_classifier
    from malot_sparse.lottery import imp
    from malot_sparse.reprogram import input_prompt, linear_probe

    g = torch.Generator().manual_seed(seed)
    source_teacher = _teacher(g, CLASSES)
    x_src = torch.randn(4000, DIM, generator=g)
    y_src = source_teacher(x_src)
    steps = 300 if quick else 500
    adapt_steps = 200 if quick else 400
    targets: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    x_rel = torch.randn(1200, DIM, generator=g)
    targets["related"] = (x_rel, _teacher(g, TARGET_CLASSES)(x_rel))
    x_shift = torch.randn(1200, DIM, generator=g) * 1.5
    targets["shifted"] = (x_shift[:, : DIM - 4], source_teacher(x_shift) % TARGET_CLASSES)

    def train(net: torch.nn.Module, n: int, s: int) -> None:
        train_classifier(net, x_src[:3000], y_src[:3000], steps=n, lr=2e-3, batch_size=128, seed=s)

    models: dict[str, torch.nn.Sequential] = {}
    source_acc: dict[str, float] = {}
    for label, rounds in (("dense", 0), ("ticket875", 3), ("ticket969", 5)):
        if quick and label == "ticket969":
            continue
        torch.manual_seed(seed)
        model = build_mlp(DIM, WIDTHS, CLASSES)
        masks: dict[str, torch.Tensor] = {}
        if rounds:
            masks = imp(model, train, rounds=rounds, p=0.5, steps=steps, seed=seed).masks
        train_classifier(
            model, x_src[:3000], y_src[:3000], steps=steps, lr=2e-3, batch_size=128, seed=seed, masks=masks
        )
        models[label] = model
        source_acc[label] = accuracy(model, x_src[3000:], y_src[3000:])
    out: dict[str, Any] = {"source_acc": source_acc}
    for target, (x, y) in targets.items():
        for label, model in models.items():
            x_full = x if x.shape[1] == DIM else torch.nn.functional.pad(x, (0, DIM - x.shape[1]))
            lp = linear_probe(
                model,
                x_full[:800],
                y[:800],
                x_full[800:],
                y[800:],
                classes=TARGET_CLASSES,
                steps=adapt_steps,
                seed=seed,
            )
            vp = input_prompt(
                model, x[:800], y[:800], x[800:], y[800:], classes=TARGET_CLASSES, steps=adapt_steps, seed=seed
            )
            out[f"{target}/{label}/lp_acc"], out[f"{target}/{label}/lp_ece"] = lp.accuracy, lp.ece
            out[f"{target}/{label}/vp_acc"], out[f"{target}/{label}/vp_ece"] = vp.accuracy, vp.ece
    return out


def main() -> None:
    """Run the benchmark and write one JSON object."""
    args = benchmark_args(__doc__, default_out="reprogram_claim.json", seeds=4, quick_seeds=1)
    start = time.perf_counter()
    runs = [_run(seed, args.quick) for seed in args.seed_list]
    tickets = ["ticket875"] if args.quick else ["ticket875", "ticket969"]

    def mean(model: str, metric: str) -> float:
        return statistics.mean(r[f"{t}/{model}/{metric}"] for r in runs for t in ("related", "shifted"))

    figures: dict[str, float] = {}
    for model in ["dense", *tickets]:
        for metric in ("lp_acc", "lp_ece", "vp_acc", "vp_ece"):
            figures[f"{model}_{metric}"] = mean(model, metric)
    figures["ece_ticket_minus_dense_lp"] = statistics.mean(mean(t, "lp_ece") for t in tickets) - mean("dense", "lp_ece")
    figures["ece_ticket_minus_dense_vp"] = statistics.mean(mean(t, "vp_ece") for t in tickets) - mean("dense", "vp_ece")
    figures["vp_acc_dense_minus_ticket"] = mean("dense", "vp_acc") - statistics.mean(mean(t, "vp_acc") for t in tickets)
    keys = [k for k in runs[0] if k != "source_acc"]
    write_result(
        args.out,
        figures,
        details={
            "quick": args.quick,
            "seeds": args.seed_list,
            "summary": {k: summarize([r[k] for r in runs]) for k in keys},
            "source_acc": [r["source_acc"] for r in runs],
            "runs": runs,
            "seconds": time.perf_counter() - start,
        },
    )


if __name__ == "__main__":
    main()
