"""Fantastic Gains claim: KL+DP transfer from a *weaker* teacher with complementary knowledge raises the student's
accuracy (positive transfer), where plain KD from that teacher loses accuracy.

Synthetic set-up: a 10-class Gaussian-mixture task (2 modes per class, 10-D). The student (MLP 10-64-10) is trained
on data where classes 5–9 are rare; the teacher (a smaller MLP 10-24-10) on data where classes 0–4 are rare, and
with fewer samples, so it is weaker overall but better on classes 5–9. Transfer runs on the student's own training
data (as in the paper, the transfer set teaches no new labels). Compared, all for the same steps from the same
student: ``kl_dp`` (this tool, supervised partition), ``kl_dp_unsup`` (partition by top confidence), ``kd`` (plain
KL to the teacher, T=1), ``ce`` (continue training the student with cross-entropy on the transfer set: the obvious
baseline). Accuracy on a balanced test set.

    python plugins/distill/benchmarks/knowledge_transfer_claim.py --quick --out kt.json

Figures: ``delta_kl_dp``, ``delta_kl_dp_unsup``, ``delta_kd``, ``delta_ce`` (test accuracy after − before, mean over
seeds, in accuracy points ×100), ``student_acc_before``, ``teacher_acc``. The claim reproduces when ``delta_kl_dp > 0``
and ``delta_kl_dp > delta_kd``.
"""

from __future__ import annotations

import copy
from typing import Any

from malot.benchmarking import benchmark_args, summarize, write_result


def run(seed: int, quick: bool) -> dict[str, float]:
    """One seed: train student and teacher, then every transfer variant; accuracy deltas in points."""
    import torch
    import torch.nn.functional as F
    from malot_distill.core.mlp import build_mlp
    from malot_distill.core.toy import mixture_centres, sample_mixture, train_ce
    from malot_distill.core.train import accuracy, batches, fit
    from malot_distill.knowledge_transfer import transfer

    torch.manual_seed(seed)
    centres = mixture_centres(10, 2, 10, seed, spread=2.0)
    rare_high = torch.tensor([1.0] * 5 + [0.08] * 5)
    rare_low = torch.tensor([0.08] * 5 + [1.0] * 5)
    xs, ys, _ = sample_mixture(centres, 1500, seed + 1, class_weights=rare_high)
    xt, yt, _ = sample_mixture(centres, 800, seed + 2, class_weights=rare_low)
    x_test, y_test, _ = sample_mixture(centres, 2000, seed + 3)
    pre_steps = 300 if quick else 600
    steps = 150 if quick else 300
    student = build_mlp([10, 64, 10], seed=seed)
    teacher = build_mlp([10, 24, 10], seed=seed + 100)
    train_ce(student, xs, ys, steps=pre_steps, seed=seed)
    train_ce(teacher, xt, yt, steps=pre_steps, seed=seed)
    before = accuracy(student, x_test, y_test)
    order = batches(xs.shape[0], 64, steps, seed + 7)
    results: dict[str, float] = {
        "student_acc_before": 100 * before,
        "teacher_acc": 100 * accuracy(teacher, x_test, y_test),
    }
    lr = 1e-3
    for name, unsup in (("kl_dp", False), ("kl_dp_unsup", True)):
        s = copy.deepcopy(student)
        out = transfer(
            s,
            teacher,
            lambda i: (xs[order[i]], ys[order[i]], None),
            lambda m, inp: m(inp),
            steps=steps,
            lr=lr,
            unsupervised=unsup,
        )
        results[f"delta_{name}"] = 100 * (accuracy(s, x_test, y_test) - before)
        results[f"teacher_fraction_{name}"] = sum(out.teacher_fractions) / len(out.teacher_fractions)
    from malot_distill.core.kd import soft_kl

    s = copy.deepcopy(student)
    s.train()
    fit(s.parameters(), lambda i: soft_kl(s(xs[order[i]]), teacher(xs[order[i]]).detach()).mean(), steps=steps, lr=lr)
    results["delta_kd"] = 100 * (accuracy(s.eval(), x_test, y_test) - before)
    s = copy.deepcopy(student)
    s.train()
    fit(s.parameters(), lambda i: F.cross_entropy(s(xs[order[i]]), ys[order[i]]), steps=steps, lr=lr)
    results["delta_ce"] = 100 * (accuracy(s.eval(), x_test, y_test) - before)
    return results


def main() -> None:
    """Run the seeds and write the JSON result."""
    args = benchmark_args(
        __doc__, default_out="plugins/distill/benchmarks/results/knowledge_transfer_claim.json", seeds=5, quick_seeds=2
    )
    runs = [run(seed, args.quick) for seed in args.seed_list]
    keys = list(runs[0])
    stats: dict[str, Any] = {k: summarize([r[k] for r in runs]) for k in keys}
    figures = {k: stats[k]["mean"] for k in keys if not k.startswith("teacher_fraction")}
    reproduced = figures["delta_kl_dp"] > 0 and figures["delta_kl_dp"] > figures["delta_kd"]
    write_result(
        args.out, figures, details={"stats": stats, "runs": runs, "quick": args.quick, "reproduced": reproduced}
    )


if __name__ == "__main__":
    main()
