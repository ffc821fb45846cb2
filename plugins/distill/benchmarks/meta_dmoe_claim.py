"""Meta-DMoE claim: test-time distillation from meta-trained aggregated domain experts improves a student on an
unseen, shifted target domain over the unadapted (ERM) student.

Synthetic set-up: 8 classes in 10-D; domain ``d`` maps a sample ``z`` (class centre + noise) through its own random
near-identity linear map plus offset, ``x = M_d z + b_d``. Five source domains each get an expert (MLP 10-32-8,
trained on that domain only); the student (same shape) is first trained by ERM on all source domains. For every
target domain (4 per seed, unseen in training) the student adapts on an unlabelled batch of 64 samples and is scored
on that batch (the paper's transductive test-time protocol). Compared: ``erm`` (no adaptation), ``mean_kd`` (one
feature-KD step towards the plain average of the experts' features, no meta-training: the simple baseline),
``expert_ensemble`` (average of the experts' logits), ``meta_dmoe`` (student + transformer aggregator meta-trained
with the episode's own expert masked, then one adaptation step). Same α for every adapting variant.

    python plugins/distill/benchmarks/meta_dmoe_claim.py --quick --out meta_dmoe.json

Figures: target-batch accuracy (%) per variant; reproduced when ``meta_dmoe_acc > erm_acc`` and ``> mean_kd_acc``.
"""

from __future__ import annotations

import copy
from typing import Any

from malot.benchmarking import benchmark_args, summarize, write_result

DIM, CLASSES, SOURCES, TARGETS, ALPHA = 10, 8, 5, 4, 0.1


def run(seed: int, quick: bool) -> dict[str, float]:
    """One seed: experts, ERM student, meta-training, then every variant on the target domains."""
    import torch
    from malot_distill.core.mlp import build_mlp
    from malot_distill.core.toy import train_ce
    from malot_distill.meta_dmoe import adapt, build_aggregator, meta_train

    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(CLASSES, DIM, generator=gen) * 2.0

    def domain(n: int) -> Any:
        m = torch.eye(DIM) + 0.5 * torch.randn(DIM, DIM, generator=gen)
        b = 1.5 * torch.randn(DIM, generator=gen)

        def draw(k: int) -> tuple[torch.Tensor, torch.Tensor]:
            y = torch.randint(CLASSES, (k,), generator=gen)
            return (centres[y] + torch.randn(k, DIM, generator=gen)) @ m.T + b, y

        return draw(n)

    steps = 300 if quick else 600
    xs, ys, ds, experts = [], [], [], []
    for d in range(SOURCES):
        x, y = domain(600)
        expert = build_mlp([DIM, 32, CLASSES], seed=seed * 10 + d)
        train_ce(expert, x, y, steps=steps, seed=seed)
        for p in expert.parameters():
            p.requires_grad_(False)
        experts.append(expert)
        xs.append(x)
        ys.append(y)
        ds.append(torch.full((600,), d))
    x_src, y_src, d_src = torch.cat(xs), torch.cat(ys), torch.cat(ds)
    erm = build_mlp([DIM, 32, CLASSES], seed=seed + 77)
    train_ce(erm, x_src, y_src, steps=steps, seed=seed)
    meta = copy.deepcopy(erm)
    agg = build_aggregator("transformer", 32, 32, seed=seed)
    meta_train(
        meta, experts, agg, x_src, y_src, d_src, episodes=150 if quick else 400, alpha=ALPHA, batch_size=32, seed=seed
    )
    mean_agg = build_aggregator("mean", 32, 32)
    acc: dict[str, list[float]] = {k: [] for k in ("erm", "mean_kd", "expert_ensemble", "meta_dmoe")}
    for _ in range(TARGETS):
        x_t, y_t = domain(64)
        with torch.no_grad():
            acc["erm"].append(float((erm(x_t).argmax(-1) == y_t).float().mean()))
            ens = torch.stack([e(x_t).softmax(-1) for e in experts]).mean(0)
            acc["expert_ensemble"].append(float((ens.argmax(-1) == y_t).float().mean()))
        for name, model, aggregator in (("mean_kd", erm, mean_agg), ("meta_dmoe", meta, agg)):
            logits = adapt(model, experts, aggregator, x_t, alpha=ALPHA)
            acc[name].append(float((logits.argmax(-1) == y_t).float().mean()))
    return {f"{k}_acc": 100 * sum(v) / len(v) for k, v in acc.items()}


def main() -> None:
    """Run the seeds and write the JSON result."""
    args = benchmark_args(
        __doc__, default_out="plugins/distill/benchmarks/results/meta_dmoe_claim.json", seeds=5, quick_seeds=2
    )
    runs = [run(seed, args.quick) for seed in args.seed_list]
    stats: dict[str, Any] = {k: summarize([r[k] for r in runs]) for k in runs[0]}
    figures = {k: stats[k]["mean"] for k in runs[0]}
    reproduced = figures["meta_dmoe_acc"] > figures["erm_acc"] and figures["meta_dmoe_acc"] > figures["mean_kd_acc"]
    details = {"stats": stats, "runs": runs, "quick": args.quick, "reproduced": reproduced}
    write_result(args.out, figures, details=details)


if __name__ == "__main__":
    main()
