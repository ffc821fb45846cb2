"""AutoTransfer claim: a design prior from the most similar bank tasks, found by Fisher task embeddings, picks a
better first design for a new task than the design that is best on average over the bank, than a random design,
and than a prior from tasks found by simple dataset meta-features.

Tasks: 8-d inputs, binary labels from one of three rules (linear boundary, XOR of two coordinates, radius
threshold), with 0 % or 15 % label noise, 200 training and 500 test samples. Designs: five small networks (linear;
MLP 16 tanh; MLP 64 ReLU; MLP 2x32 ReLU; MLP 64 ReLU with strong weight decay), each trained 100 Adam steps; a
design's performance is its test accuracy. Bank: 12 tasks (8 in quick mode); queries: 6 new tasks (3 in quick mode).
Figure: the query's accuracy with the prior's top design divided by its best design's accuracy (1 = best pick).
AutoTransfer's prior uses the triplet-loss projection of the Fisher features learned on the bank ("projected");
"fisher" is the same without the learned projection.
Meta-feature baseline: tasks embedded by (mean |corr(xⱼ, y)|, max |corr(xⱼ, y)|, label balance, mean |corr(xⱼ², y)|),
same top-k aggregation.

    python plugins/select/benchmarks/autotransfer_claim.py --quick --out autotransfer.json
"""

from __future__ import annotations

import numpy as np
import torch
from malot_select.autotransfer import design_prior, fisher_task_embedding, learn_task_projection
from torch import nn

from malot.benchmarking import benchmark_args, summarize, write_result

RULES = ("linear", "xor", "radius")
DESIGNS = ("linear", "mlp16_tanh", "mlp64_relu", "mlp2x32_relu", "mlp64_relu_wd")


def make_task(rng: np.random.Generator, rule: str, noise: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(size=(n, 8))
    if rule == "linear":
        y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    elif rule == "xor":
        y = (x[:, 0] * x[:, 1] > 0).astype(int)
    else:
        y = (np.linalg.norm(x[:, :3], axis=1) > 1.55).astype(int)
    flip = rng.random(n) < noise
    return x, np.where(flip, 1 - y, y)


def build(design: str) -> tuple[nn.Module, float]:
    if design == "linear":
        return nn.Linear(8, 2), 0.0
    if design == "mlp16_tanh":
        return nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 2)), 0.0
    if design == "mlp2x32_relu":
        return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2)), 0.0
    return nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 2)), (0.05 if design.endswith("wd") else 0.0)


def performance(task: tuple[np.ndarray, ...], design: str, seed: int) -> float:
    x, y, xt, yt = (torch.tensor(a) for a in task)
    torch.manual_seed(seed)
    net, wd = build(design)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2, weight_decay=wd)
    for _ in range(100):
        loss = nn.functional.cross_entropy(net(x.float()), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float((net(xt.float()).argmax(-1) == yt).float().mean())


def meta_features(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    yc = y - y.mean()
    corr = np.abs((x - x.mean(0)).T @ yc) / (x.std(0) * yc.std() * len(y) + 1e-12)
    x2 = x**2
    corr2 = np.abs((x2 - x2.mean(0)).T @ yc) / (x2.std(0) * yc.std() * len(y) + 1e-12)
    return np.array([corr.mean(), corr.max(), y.mean(), corr2.mean()])


def run(seed: int, quick: bool) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    n_bank, n_query = (8, 3) if quick else (12, 6)
    specs = [(RULES[i % 3], [0.0, 0.15][(i // 3) % 2]) for i in range(n_bank + n_query)]
    order = rng.permutation(len(specs))
    tasks = []
    for i in order:
        rule, noise = specs[i]
        x, y = make_task(rng, rule, noise, 200)
        xt, yt = make_task(rng, rule, noise, 500)
        perf = {d: performance((x, y, xt, yt), d, seed) for d in DESIGNS}
        tasks.append(
            {
                "rule": rule,
                "noise": noise,
                "x": x,
                "y": y,
                "perf": perf,
                "fisher": fisher_task_embedding(x, y),
                "meta": meta_features(x, y),
            }
        )
    bank, queries = tasks[:n_bank], tasks[n_bank:]
    w = learn_task_projection([t["fisher"] for t in bank], [t["perf"] for t in bank], seed=seed)
    for t in tasks:
        t["projected"] = w @ t["fisher"]
    mean_perf = {d: float(np.mean([t["perf"][d] for t in bank])) for d in DESIGNS}
    global_best = max(DESIGNS, key=lambda d: mean_perf[d])
    rows = []
    for q in queries:
        best = max(q["perf"].values())
        out = {}
        for kind in ("projected", "fisher", "meta"):
            entries = [(str(j), t[kind], t["perf"]) for j, t in enumerate(bank)]
            prior, neighbours = design_prior(q[kind], entries, k=3)
            pick = max(prior, key=lambda d: prior[d])
            out[f"prior_{kind}"] = q["perf"][pick] / best
            out[f"neighbour_rules_{kind}"] = [bank[int(n)]["rule"] for n, _ in neighbours]
        out["global_best_design"] = q["perf"][global_best] / best
        out["random_design"] = float(np.mean(list(q["perf"].values()))) / best
        out["rule"] = q["rule"]
        rows.append(out)
    return {"seed": seed, "queries": rows, "global_best": global_best}


def main() -> None:
    args = benchmark_args(__doc__, default_out="autotransfer_claim.json", seeds=3, quick_seeds=1)
    runs = [run(seed, args.quick) for seed in args.seed_list]
    keys = ("prior_projected", "prior_fisher", "prior_meta", "global_best_design", "random_design")
    summary = {
        k: summarize([float(np.mean([q[k] for q in r["queries"]])) for r in runs])  # type: ignore[index,union-attr]
        for k in keys
    }
    write_result(
        args.out,
        {f"relative_accuracy_{k}": v["mean"] for k, v in summary.items()},
        details={
            "summary": summary,
            "runs": runs,
            "claim": "the Fisher-embedding design prior's first pick beats the globally best design, a random "
            "design and a meta-feature prior",
            "claim_holds": summary["prior_projected"]["mean"]
            > max(summary[k]["mean"] for k in keys if k not in ("prior_projected", "prior_fisher")),
            "settings": "k=3, temperature 0.1, anchors trained 50 steps (defaults, fixed before running)",
        },
    )


if __name__ == "__main__":
    main()
