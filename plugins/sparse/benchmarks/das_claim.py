"""DAS claim: the bandit's skip set, with adapters in place of the skipped blocks, keeps more target-task accuracy
than skipping the last blocks, a random set, or the blocks whose single removal hurts least, at the same compute.

Synthetic set-up: a residual MLP (20 → 64, 8 residual blocks h + W₂ReLU(W₁h), head) is pre-trained on a 10-class
source task (labels from a random teacher MLP). The target task uses the same teacher's labels on shifted, rescaled
inputs. Every method skips k = 3 of the 8 blocks (37.5% of the block compute), replaces them with bottleneck-8
adapters and fine-tunes only those adapters (and the head) on the target training set for the same steps:

* ``das``: the bandit over skip sets (reward −loss on target batches, Gumbel-top-k sampling, adapter steps during
  the search);
* ``last_k``: the last k blocks (the usual "drop the top layers");
* ``random_k``: a random set (seeded);
* ``single_ablation``: the k blocks whose removal alone raises the target loss least (the obvious cheap baseline).

    python plugins/sparse/benchmarks/das_claim.py --quick --out das_claim.json

Top-level figures (means over seeds): target test accuracy of the dense model (head and the same number of adapter
steps fine-tuned) and of every skip method, ``forward_time_ratio`` (skipped/dense median forward time on a 4096-row
batch) and ``das_minus_best_baseline`` (above 0 reproduces the claim). Settings fixed before the first run.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from malot.benchmarking import benchmark_args, summarize, write_result

DIM, CLASSES, WIDTH, BLOCKS, K = 20, 10, 64, 8, 3


def _model() -> Any:
    import torch

    class Block(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = torch.nn.Linear(WIDTH, WIDTH)
            self.outer = torch.nn.Linear(WIDTH, WIDTH)

        def forward(self, h: torch.Tensor) -> torch.Tensor:
            return h + self.outer(torch.relu(self.inner(h)))

    class ResMLP(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Linear(DIM, WIDTH)
            self.blocks = torch.nn.ModuleList(Block() for _ in range(BLOCKS))
            self.head = torch.nn.Linear(WIDTH, CLASSES)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.embed(x)
            for block in self.blocks:
                h = block(h)
            return self.head(h)

    return ResMLP()


def _run(seed: int, quick: bool) -> dict[str, Any]:
    import copy

    import torch
    import torch.nn.functional as F
    from malot_sparse.das import make_adapters, skip_bandit, skipping

    g = torch.Generator().manual_seed(seed)
    w1 = torch.randn(DIM, 64, generator=g) / DIM**0.5
    w2 = torch.randn(64, CLASSES, generator=g)

    def label(x: torch.Tensor) -> torch.Tensor:
        return (torch.tanh(x @ w1) @ w2).argmax(dim=1)

    x_src = torch.randn(4000, DIM, generator=g)
    shift = torch.randn(DIM, generator=g) * 0.5
    x_tgt = torch.randn(3000, DIM, generator=g) * 1.3 + shift
    y_src, y_tgt = label(x_src), label(x_tgt)
    x_fit, y_fit, x_test, y_test = x_tgt[:2000], y_tgt[:2000], x_tgt[2000:], y_tgt[2000:]
    torch.manual_seed(seed)
    model = _model()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _step in range(800 if quick else 1500):
        pick = torch.randint(4000, (128,), generator=g)
        opt.zero_grad()
        F.cross_entropy(model(x_src[pick]), y_src[pick]).backward()
        opt.step()
    for p in model.parameters():
        p.requires_grad_(False)
    steps = 300 if quick else 600
    batch_gen = torch.Generator().manual_seed(seed + 3)

    def make_loss(net: torch.nn.Module):  # type: ignore[no-untyped-def]
        def loss(step: int) -> torch.Tensor:
            pick = torch.randint(2000, (128,), generator=batch_gen)
            return F.cross_entropy(net(x_fit[pick]), y_fit[pick])

        return loss

    def evaluate(skip: list[int]) -> float:
        """Fine-tune the head and the skipped blocks' adapters (the same steps for every method); test accuracy."""
        net = copy.deepcopy(model)
        adapters = make_adapters(BLOCKS, WIDTH, 8, seed)
        params = [*net.head.parameters(), *(p for i in skip for p in adapters[i].parameters())]
        for p in params:
            p.requires_grad_(True)
        optimizer = torch.optim.Adam(params, lr=2e-3)
        loss = make_loss(net)
        with skipping(net.blocks, adapters, skip):
            for step in range(steps):
                optimizer.zero_grad(set_to_none=True)
                loss(step).backward()
                optimizer.step()
            with torch.no_grad():
                return float((net(x_test).argmax(1) == y_test).float().mean())

    bandit = skip_bandit(
        model.blocks,
        make_adapters(BLOCKS, WIDTH, 8, seed),
        make_loss(model),
        k=K,
        rounds=60 if quick else 120,
        adapter_lr=2e-3,
        seed=seed,
    )
    identity = make_adapters(BLOCKS, WIDTH, 0)
    single: list[float] = []
    for i in range(BLOCKS):
        with skipping(model.blocks, identity, [i]), torch.no_grad():
            single.append(float(F.cross_entropy(model(x_fit), y_fit)))
    rng = torch.Generator().manual_seed(seed + 11)
    sets = {
        "das": bandit.skip,
        "last_k": list(range(BLOCKS - K, BLOCKS)),
        "random_k": sorted(torch.randperm(BLOCKS, generator=rng)[:K].tolist()),
        "single_ablation": sorted(sorted(range(BLOCKS), key=lambda i: single[i])[:K]),
    }
    out: dict[str, Any] = {"dense_acc": evaluate([])}
    for name, skip in sets.items():
        out[f"{name}_acc"] = evaluate(skip)
        out[f"{name}_set"] = skip
    big = torch.randn(4096, DIM)
    out["forward_time_ratio"] = _time(model, big, sets["das"]) / _time(model, big, [])
    return out


def _time(model: Any, x: Any, skip: list[int]) -> float:
    import torch
    from malot_sparse.das import make_adapters, skipping

    adapters = make_adapters(BLOCKS, WIDTH, 8)
    times = []
    with skipping(model.blocks, adapters, skip), torch.no_grad():
        model(x)
        for _ in range(15):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Run the benchmark and write one JSON object."""
    args = benchmark_args(__doc__, default_out="das_claim.json", seeds=4, quick_seeds=1)
    start = time.perf_counter()
    runs = [_run(seed, args.quick) for seed in args.seed_list]
    keys = ["dense_acc", "das_acc", "last_k_acc", "random_k_acc", "single_ablation_acc", "forward_time_ratio"]

    def mean(key: str) -> float:
        return statistics.mean(r[key] for r in runs)

    figures = {k: mean(k) for k in keys}
    figures["das_minus_best_baseline"] = mean("das_acc") - max(
        mean("last_k_acc"), mean("random_k_acc"), mean("single_ablation_acc")
    )
    write_result(
        args.out,
        figures,
        details={
            "quick": args.quick,
            "seeds": args.seed_list,
            "k": K,
            "summary": {k: summarize([r[k] for r in runs]) for k in keys},
            "runs": runs,
            "seconds": time.perf_counter() - start,
        },
    )


if __name__ == "__main__":
    main()
