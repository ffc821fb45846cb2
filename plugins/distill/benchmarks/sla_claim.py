"""SLA claim: with few labelled images, learning joint (class, rotation) labels and aggregating over rotations
beats the plain classifier, and beats both label-invariant rotation augmentation (DA) and a separate rotation head
(multi-task, MT); self-distillation keeps most of the aggregated accuracy in one forward pass.

Data: scikit-learn's bundled 8×8 handwritten digits (1797 images, 10 classes; a real dataset shipped with the
package). 300 training images, the remaining 1497 for test. Same small CNN (2 conv layers, width 16), same steps,
Adam lr 1e-3 for all: ``baseline`` (CE), ``da`` (CE on all 4 rotations with the same label), ``mt`` (CE + a 4-way
rotation head), ``sla_single`` (joint head, untransformed input), ``sla_ag`` (aggregated), ``sla_sd`` (the
self-distilled N-way head, trained jointly with SLA).

    python plugins/distill/benchmarks/sla_claim.py --quick --out sla.json

Quick mode: 2 seeds, 150 steps (too short for SLA's 40-way joint task to converge: a smoke run, not the claim);
full mode: 5 seeds, 800 steps.

Figures: test accuracy (%) of each; reproduced when ``sla_ag_acc > baseline_acc``, ``> da_acc`` and ``> mt_acc``.
"""

from __future__ import annotations

from typing import Any

from malot.benchmarking import benchmark_args, summarize, write_result


def run(seed: int, quick: bool) -> dict[str, float]:
    """One seed: a random 300-image training split, every variant."""
    import torch
    import torch.nn.functional as F
    from malot_distill.core.train import accuracy, batches, fit
    from malot_distill.sla import aggregated_logits, build_sla_net, train_sla, transformations
    from sklearn.datasets import load_digits

    digits = load_digits()
    x_all = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y_all = torch.tensor(digits.target, dtype=torch.long)
    perm = torch.randperm(len(y_all), generator=torch.Generator().manual_seed(seed))
    tr, te = perm[:300], perm[300:]
    x, y, x_t, y_t = x_all[tr], y_all[tr], x_all[te], y_all[te]
    steps = 150 if quick else 800
    rot = transformations("rotation")
    out: dict[str, float] = {}
    order = batches(len(y), 64, steps, seed)

    # baseline: the N-way head alone (M = 1, no self-distillation)
    base = build_sla_net(1, 10, 1, seed=seed)
    train_sla(base, x, y, transformations("identity"), steps=steps, self_distill=False, seed=seed)
    out["baseline_acc"] = 100 * accuracy(base, x_t, y_t)

    da = build_sla_net(1, 10, 1, seed=seed)

    def da_loss(step: int) -> torch.Tensor:
        xb, yb = x[order[step]], y[order[step]]
        return sum(F.cross_entropy(da(t(xb)), yb) for t in rot) / 4  # type: ignore[return-value]

    da.train()
    fit(da.parameters(), da_loss, steps=steps, lr=1e-3)
    out["da_acc"] = 100 * accuracy(da.eval(), x_t, y_t)

    mt = build_sla_net(1, 10, 1, seed=seed)
    rot_head = torch.nn.Linear(64, 4)

    def mt_loss(step: int) -> torch.Tensor:
        xb, yb = x[order[step]], y[order[step]]
        loss = F.cross_entropy(mt(xb), yb)
        for j, t in enumerate(rot):
            loss = loss + F.cross_entropy(rot_head(mt.body(t(xb))), torch.full_like(yb, j)) / 4
        return loss

    mt.train()
    fit([*mt.parameters(), *rot_head.parameters()], mt_loss, steps=steps, lr=1e-3)
    out["mt_acc"] = 100 * accuracy(mt.eval(), x_t, y_t)

    sla = build_sla_net(1, 10, 4, seed=seed)
    train_sla(sla, x, y, rot, steps=steps, self_distill=True, seed=seed)
    with torch.no_grad():
        out["sla_single_acc"] = 100 * float((sla(x_t).view(-1, 10, 4)[:, :, 0].argmax(-1) == y_t).float().mean())
    out["sla_ag_acc"] = 100 * accuracy(lambda inp: aggregated_logits(sla, inp, rot), x_t, y_t)
    out["sla_sd_acc"] = 100 * accuracy(sla.sd, x_t, y_t)
    return out


def main() -> None:
    """Run the seeds and write the JSON result."""
    args = benchmark_args(
        __doc__, default_out="plugins/distill/benchmarks/results/sla_claim.json", seeds=5, quick_seeds=2
    )
    runs = [run(seed, args.quick) for seed in args.seed_list]
    stats: dict[str, Any] = {k: summarize([r[k] for r in runs]) for k in runs[0]}
    figures = {k: stats[k]["mean"] for k in runs[0]}
    reproduced = all(figures["sla_ag_acc"] > figures[k] for k in ("baseline_acc", "da_acc", "mt_acc"))
    details = {"stats": stats, "runs": runs, "quick": args.quick, "reproduced": reproduced}
    write_result(args.out, figures, details=details)


if __name__ == "__main__":
    main()
