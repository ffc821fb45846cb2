"""Lottery-ticket claim: IMP tickets rewound to their initialisation train better than the same sparse network
from a fresh random initialisation, and better than a random mask of the same sparsity.

Synthetic set-up: labels from a random teacher MLP (10 classes) on 20 input features; a 20-200-100-10 MLP. IMP
prunes p = 50% of the remaining weights per round (global magnitude, ``torch.nn.utils.prune``) and rewinds to
θ₀ (k = 0, the original LTH) or to θ_k (k = 5% of training, late rewinding). The trained accuracy of every round's
ticket is recorded on held-out data. At the final sparsity 1 − 0.5^r three controls train with the same steps:
the ticket's mask from a fresh random init (the paper's random re-initialisation), a random mask with the same
per-layer counts from θ₀ (random pruning), and the dense network.

    python plugins/sparse/benchmarks/lottery_claim.py --quick --out lottery_claim.json

Top-level figures (means over seeds): ``dense_acc``, ``ticket_acc`` (rewound to θ₀), ``late_rewind_ticket_acc``,
``random_reinit_acc``, ``random_mask_acc``, ``final_sparsity`` and ``ticket_minus_reinit`` (above 0 reproduces the
claim). The settings were fixed before the first run.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from malot.benchmarking import benchmark_args, summarize, write_result

DIM, CLASSES, WIDTHS = 20, 10, [200, 100]


def _data(seed: int, n: int) -> tuple[Any, Any, Any, Any]:
    import torch

    g = torch.Generator().manual_seed(seed)
    w1 = torch.randn(DIM, 64, generator=g) / DIM**0.5
    w2 = torch.randn(64, CLASSES, generator=g)
    x = torch.randn(2 * n, DIM, generator=g)
    y = (torch.tanh(x @ w1) @ w2).argmax(dim=1)
    return x[:n], y[:n], x[n:], y[n:]


def _run(seed: int, quick: bool) -> dict[str, Any]:
    import torch
    from malot_sparse.core.mlp import accuracy, build_mlp, train_classifier
    from malot_sparse.lottery import imp

    x, y, x_test, y_test = _data(seed, 2000)
    rounds, steps, lr = (3, 300, 2e-3) if quick else (5, 500, 2e-3)

    def train(net: torch.nn.Module, n: int, s: int) -> None:
        train_classifier(net, x, y, steps=n, lr=lr, batch_size=128, seed=s)

    def masked_train(net: torch.nn.Module, masks: dict[str, torch.Tensor], n: int) -> float:
        train_classifier(net, x, y, steps=n, lr=lr, batch_size=128, seed=seed + 99, masks=masks)
        return accuracy(net, x_test, y_test)

    out: dict[str, Any] = {}
    for label, k in (("ticket", 0), ("late_rewind_ticket", steps // 20)):
        torch.manual_seed(seed)
        model = build_mlp(DIM, WIDTHS, CLASSES)
        curve: list[float] = []
        result = imp(
            model,
            train,
            rounds=rounds,
            p=0.5,
            steps=steps,
            rewind_step=k,
            seed=seed,
            on_round=lambda _r, net, curve=curve: curve.append(accuracy(net, x_test, y_test)),
        )
        with torch.no_grad():
            for name, param in model.named_parameters():
                if name in result.masks:
                    param.mul_(result.masks[name])
        out[f"{label}_acc"] = masked_train(model, result.masks, steps - k)
        out[f"{label}_curve"] = curve  # trained accuracy at sparsity 0, p, 1-(1-p)^2, ...
        out["final_sparsity"] = result.final_sparsity
        if k == 0:
            masks = result.masks
    out["dense_acc"] = out["ticket_curve"][0]
    torch.manual_seed(seed + 10_000)
    reinit = build_mlp(DIM, WIDTHS, CLASSES)
    with torch.no_grad():
        for name, param in reinit.named_parameters():
            if name in masks:
                param.mul_(masks[name])
    out["random_reinit_acc"] = masked_train(reinit, masks, steps)
    torch.manual_seed(seed)
    random_mask_model = build_mlp(DIM, WIDTHS, CLASSES)
    g = torch.Generator().manual_seed(seed + 5)
    random_masks = {}
    for name, mask in masks.items():
        flat = torch.zeros(mask.numel(), dtype=torch.bool)
        flat[torch.randperm(mask.numel(), generator=g)[: int(mask.sum())]] = True
        random_masks[name] = flat.view(mask.shape)
    with torch.no_grad():
        for name, param in random_mask_model.named_parameters():
            if name in random_masks:
                param.mul_(random_masks[name])
    out["random_mask_acc"] = masked_train(random_mask_model, random_masks, steps)
    return out


def main() -> None:
    """Run the benchmark and write one JSON object."""
    args = benchmark_args(__doc__, default_out="lottery_claim.json", seeds=5, quick_seeds=2)
    start = time.perf_counter()
    runs = [_run(seed, args.quick) for seed in args.seed_list]
    keys = ["dense_acc", "ticket_acc", "late_rewind_ticket_acc", "random_reinit_acc", "random_mask_acc"]

    def mean(key: str) -> float:
        return statistics.mean(r[key] for r in runs)

    figures = {k: mean(k) for k in keys}
    figures["final_sparsity"] = mean("final_sparsity")
    figures["ticket_minus_reinit"] = mean("ticket_acc") - mean("random_reinit_acc")
    figures["ticket_minus_random_mask"] = mean("ticket_acc") - mean("random_mask_acc")
    write_result(
        args.out,
        figures,
        details={
            "quick": args.quick,
            "seeds": args.seed_list,
            "summary": {k: summarize([r[k] for r in runs]) for k in keys},
            "ticket_minus_reinit_per_seed": [r["ticket_acc"] - r["random_reinit_acc"] for r in runs],
            "runs": runs,
            "seconds": time.perf_counter() - start,
        },
    )


if __name__ == "__main__":
    main()
