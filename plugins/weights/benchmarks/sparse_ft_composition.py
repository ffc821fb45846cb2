"""LT-SFT claim: sparse fine-tunes compose (language SFT + task SFT) better than dense fine-tunes.

Synthetic analogue of the paper's zero-shot cross-lingual set-up. A small MLP is pre-trained on a source task
``y₀(x)`` over source inputs ``x``. The *target language* is an input transformation ``x' = R·x`` (R: a random
rotation of the first ``lang_dims`` input dimensions). Two fine-tunes start from the pre-trained weights θ₀:

* the **language** fine-tune learns the source task in the new language: ``R·x → y₀(x)``;
* the **task** fine-tune learns a new task in the source language: ``x → y₁(x)``.

Composition ``θ₀ + φ_lang + φ_task`` should then solve the new task in the new language, ``R·x → y₁(x)``, for
which there is no training data. Each fine-tune is learned densely (diff = all weights) or by LT-SFT (K weights,
same steps and learning rate), and the test loss of the composition on ``R·x → y₁(x)`` is compared.

    python plugins/weights/benchmarks/sparse_ft_composition.py --quick --out sparse_ft_composition.json

Top-level figures (means over seeds): ``sparse_composed_loss``, ``dense_composed_loss``, ``composed_loss_ratio``
(sparse / dense; below 1 reproduces the claim), ``task_only_loss`` (θ₀ + φ_task, sparse: no language adaptation),
``sparse_single_task_loss_ratio`` (LT-SFT vs dense on the task alone, in the source language: the price of
sparsity).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

K_FRACTION = 0.05  # share of the weights an LT-SFT diff may change
LR = 1e-2


def _run(seed: int, quick: bool) -> dict[str, float]:
    import torch
    from malot_weights.sparse_ft import compose_sparse_diffs, lt_sft

    torch.manual_seed(seed)
    dim, hidden, lang_dims = 16, 64, 8
    g = torch.Generator().manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(dim, hidden),
        torch.nn.Tanh(),
        torch.nn.Linear(hidden, hidden),
        torch.nn.Tanh(),
        torch.nn.Linear(hidden, 1),
    )
    rotation = torch.eye(dim)
    rotation[:lang_dims, :lang_dims] = torch.linalg.qr(torch.randn(lang_dims, lang_dims, generator=g))[0]
    w_source, w_task = torch.randn(dim, generator=g), torch.randn(dim, generator=g)

    def y_source(x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x @ w_source / 2).unsqueeze(1)

    def y_task(x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x @ w_task / 2).unsqueeze(1)

    x_train, x_test = torch.randn(512, dim, generator=g), torch.randn(512, dim, generator=g)
    steps = 200 if quick else 500
    pre = torch.optim.Adam(model.parameters(), lr=LR)
    for _ in range(steps):
        loss = torch.nn.functional.mse_loss(model(x_train), y_source(x_train))
        pre.zero_grad()
        loss.backward()
        pre.step()
    base = {n: p.detach().clone() for n, p in model.named_parameters()}
    rotate = rotation.T  # row vectors: x' = R x  <=>  x'ᵀ = xᵀ Rᵀ
    jobs = {
        "lang": (x_train @ rotate, y_source(x_train)),
        "task": (x_train, y_task(x_train)),
    }

    def test_loss(state: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> float:
        with torch.no_grad():
            return float(torch.nn.functional.mse_loss(torch.func.functional_call(model, state, (x,)), y))

    def reset() -> None:
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.copy_(base[n])

    total = sum(p.numel() for p in model.parameters())
    k = max(1, int(K_FRACTION * total))
    dense: dict[str, dict[str, torch.Tensor]] = {}
    sparse = {}
    for name, (x, y) in jobs.items():

        def loss_fn(net: torch.nn.Module, step: int, x: torch.Tensor = x, y: torch.Tensor = y) -> torch.Tensor:
            return torch.nn.functional.mse_loss(net(x), y)

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
    x_goal, y_goal = x_test @ rotate, y_task(x_test)
    dense_composed = {n: base[n] + dense["lang"][n] + dense["task"][n] for n in base}
    sparse_composed = compose_sparse_diffs(base, [sparse["lang"], sparse["task"]])
    sparse_task_only = compose_sparse_diffs(base, [sparse["task"]])
    dense_task_only = {n: base[n] + dense["task"][n] for n in base}
    overlap = sum(
        len(set(sparse["lang"].indices[n].tolist()) & set(sparse["task"].indices.get(n, torch.empty(0)).tolist()))
        for n in sparse["lang"].indices
    )
    return {
        "sparse_composed_loss": test_loss(sparse_composed, x_goal, y_goal),
        "dense_composed_loss": test_loss(dense_composed, x_goal, y_goal),
        "sparse_task_only_loss": test_loss(sparse_task_only, x_goal, y_goal),
        "dense_task_only_loss": test_loss(dense_task_only, x_goal, y_goal),
        "base_loss": test_loss(base, x_goal, y_goal),
        "sparse_task_source_language_loss": test_loss(sparse_task_only, x_test, y_task(x_test)),
        "dense_task_source_language_loss": test_loss(dense_task_only, x_test, y_task(x_test)),
        "mask_overlap": float(overlap),
        "k": float(k),
        "total_weights": float(total),
    }


def main() -> None:
    """Run the benchmark and write one JSON object."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and seeds (under a minute on 2 cores)")
    parser.add_argument("--out", default="sparse_ft_composition.json")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    start = time.perf_counter()
    seeds = [0, 1, 2] if args.quick else [0, 1, 2, 3, 4, 5, 6, 7]
    runs = [_run(seed, args.quick) for seed in seeds]

    def mean(key: str) -> float:
        return statistics.mean(r[key] for r in runs)

    result: dict[str, Any] = {
        "sparse_composed_loss": mean("sparse_composed_loss"),
        "dense_composed_loss": mean("dense_composed_loss"),
        "composed_loss_ratio": mean("sparse_composed_loss") / mean("dense_composed_loss"),
        "task_only_loss": mean("sparse_task_only_loss"),
        "sparse_single_task_loss_ratio": mean("sparse_task_source_language_loss")
        / mean("dense_task_source_language_loss"),
        "details": {
            "quick": args.quick,
            "seeds": seeds,
            "k_fraction": K_FRACTION,
            "lr": LR,
            "runs": runs,
            "seconds": time.perf_counter() - start,
        },
    }
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "details"}, indent=2))


if __name__ == "__main__":
    main()
