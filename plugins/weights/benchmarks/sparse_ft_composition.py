"""LT-SFT claim: sparse fine-tunes compose with less interference than dense fine-tunes.

Synthetic set-up: a small MLP (16-64-64-1) is pre-trained on a source regression task over all inputs. Two new
tasks live on different input subspaces (like two languages or domains sharing one model): task A sees inputs
whose last 8 dimensions are zero, task B inputs whose first 8 are zero, each with its own target function. Each
task is fine-tuned from θ₀ (a) densely (diff = all weights) and (b) with LT-SFT (K = 5% of the weights, same steps
and learning rate). The two diffs of each kind are added, ``θ₀ + φ_A + φ_B``, and the composed model is tested on
both tasks (mean test MSE). *Interference* is the composed loss minus the mean single-task loss.

    python plugins/weights/benchmarks/sparse_ft_composition.py --quick --out sparse_ft_composition.json

Top-level figures (means over seeds): ``sparse_composed_loss``, ``dense_composed_loss``, ``composed_loss_ratio``
(sparse / dense; below 1 reproduces the claim), ``sparse_interference``, ``dense_interference``.

Not reproduced (tried during development, not run here): a cross-lingual analogue where the "language" diff
learns the source task on rotated inputs and the "task" diff a new task on source inputs; there dense composition
had the lower loss on the new task in the rotated language.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from malot.benchmarking import benchmark_args, write_result

K_FRACTION = 0.05  # share of the weights an LT-SFT diff may change
LR = 1e-2
DIM, HIDDEN, HALF = 16, 64, 8


def _run(seed: int, quick: bool) -> dict[str, float]:
    import torch
    from malot_weights.sparse_ft import compose_sparse_diffs, lt_sft

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(DIM, HIDDEN),
        torch.nn.Tanh(),
        torch.nn.Linear(HIDDEN, HIDDEN),
        torch.nn.Tanh(),
        torch.nn.Linear(HIDDEN, 1),
    )
    steps = 200 if quick else 500

    def target(w: torch.Tensor) -> Any:
        return lambda x: torch.tanh(x @ w / 2).unsqueeze(1)

    def inputs(n: int, zero: slice | None) -> torch.Tensor:
        x = torch.randn(n, DIM, generator=g)
        if zero is not None:
            x[:, zero] = 0
        return x

    source = target(torch.randn(DIM, generator=g))
    x_pre = inputs(512, None)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    for _ in range(steps):
        loss = torch.nn.functional.mse_loss(model(x_pre), source(x_pre))
        opt.zero_grad()
        loss.backward()
        opt.step()
    base = {n: p.detach().clone() for n, p in model.named_parameters()}
    tasks = {
        "a": (inputs(512, slice(HALF, None)), inputs(512, slice(HALF, None)), target(torch.randn(DIM, generator=g))),
        "b": (inputs(512, slice(None, HALF)), inputs(512, slice(None, HALF)), target(torch.randn(DIM, generator=g))),
    }

    def reset() -> None:
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.copy_(base[n])

    def test_loss(state: dict[str, torch.Tensor], name: str) -> float:
        _, x_test, f = tasks[name]
        with torch.no_grad():
            return float(torch.nn.functional.mse_loss(torch.func.functional_call(model, state, (x_test,)), f(x_test)))

    total = sum(p.numel() for p in model.parameters())
    k = max(1, int(K_FRACTION * total))
    dense: dict[str, dict[str, torch.Tensor]] = {}
    sparse = {}
    for name, (x_train, _, f) in tasks.items():

        def loss_fn(net: torch.nn.Module, step: int, x: torch.Tensor = x_train, f: Any = f) -> torch.Tensor:
            return torch.nn.functional.mse_loss(net(x), f(x))

        reset()
        opt = torch.optim.Adam(model.parameters(), lr=LR)
        for step in range(steps):
            loss = loss_fn(model, step)
            opt.zero_grad()
            loss.backward()
            opt.step()
        dense[name] = {n: p.detach() - base[n] for n, p in model.named_parameters()}
        reset()
        sparse[name] = lt_sft(model, loss_fn, k=k, full_steps=steps, sparse_steps=steps, lr=LR).diff
    reset()

    def both(state: dict[str, torch.Tensor]) -> float:
        return (test_loss(state, "a") + test_loss(state, "b")) / 2

    dense_composed = {n: base[n] + dense["a"][n] + dense["b"][n] for n in base}
    sparse_composed = compose_sparse_diffs(base, [sparse["a"], sparse["b"]])
    dense_single = statistics.mean(test_loss({n: base[n] + dense[t][n] for n in base}, t) for t in ("a", "b"))
    sparse_single = statistics.mean(test_loss(compose_sparse_diffs(base, [sparse[t]]), t) for t in ("a", "b"))
    overlap = sum(
        len(set(sparse["a"].indices[n].tolist()) & set(sparse["b"].indices[n].tolist()))
        for n in sparse["a"].indices
        if n in sparse["b"].indices
    )
    return {
        "sparse_composed_loss": both(sparse_composed),
        "dense_composed_loss": both(dense_composed),
        "sparse_single_loss": sparse_single,
        "dense_single_loss": dense_single,
        "base_loss": both(base),
        "mask_overlap": float(overlap),
        "k": float(k),
        "total_weights": float(total),
    }


def main() -> None:
    """Run the benchmark and write one JSON object."""
    args = benchmark_args(__doc__, default_out="sparse_ft_composition.json", seeds=8, quick_seeds=3)

    start = time.perf_counter()
    seeds = args.seed_list
    runs = [_run(seed, args.quick) for seed in seeds]

    def mean(key: str) -> float:
        return statistics.mean(r[key] for r in runs)

    write_result(
        args.out,
        {
            "sparse_composed_loss": mean("sparse_composed_loss"),
            "dense_composed_loss": mean("dense_composed_loss"),
            "composed_loss_ratio": mean("sparse_composed_loss") / mean("dense_composed_loss"),
            "sparse_interference": mean("sparse_composed_loss") - mean("sparse_single_loss"),
            "dense_interference": mean("dense_composed_loss") - mean("dense_single_loss"),
        },
        details={
            "quick": args.quick,
            "seeds": seeds,
            "k_fraction": K_FRACTION,
            "lr": LR,
            "mean_single_loss": {"sparse": mean("sparse_single_loss"), "dense": mean("dense_single_loss")},
            "mean_base_loss": mean("base_loss"),
            "runs": runs,
            "seconds": time.perf_counter() - start,
        },
    )


if __name__ == "__main__":
    main()
