"""N2N claim: the learned two-stage policy finds students with a better compression/accuracy reward than random
search over the same actions with the same number of evaluated students, and than uniform shrinking.

Synthetic set-up: 10-class labels from a random teacher MLP on 20 features; the teacher is a 20-64x5-10 MLP
(hidden layers 2-5 are removable). N2N runs the removal stage then the shrink stage (rollouts x updates students
each, KD-trained for the same steps). Baselines, scored with the same reward ``C(2 − C)·Acc_s/Acc_t`` on the same
validation data:

* ``random_search``: the same number of students with uniformly random keep flags and shrink ratios (best kept);
* ``uniform_half``: every hidden layer kept and shrunk to 50% (L1, torch-pruning), KD-trained;
* ``small_scratch``: an MLP with the N2N student's widths trained from scratch with KD (does the teacher's weight
  inheritance matter?) — reported as accuracy.

    python plugins/sparse/benchmarks/n2n_claim.py --quick --out n2n_claim.json

Top-level figures (means over seeds): ``n2n_reward``, ``random_search_reward``, ``uniform_half_reward``,
``n2n_compression``, ``n2n_acc_ratio`` (student/teacher test accuracy) and ``n2n_minus_random_reward`` (above 0
reproduces the claim). Settings fixed before the first run.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from malot.benchmarking import benchmark_args, summarize, write_result

DIM, CLASSES, WIDTHS = 20, 10, [64, 64, 64, 64, 64]
RATIOS = (0.25, 0.5, 0.75, 1.0)


def _run(seed: int, quick: bool) -> dict[str, Any]:
    import torch
    from malot_sparse.core.mlp import accuracy, build_mlp, split, train_classifier
    from malot_sparse.core.structured import drop_hidden_layers, mlp_widths, shrink_widths
    from malot_sparse.n2n import n2n, n2n_reward

    g = torch.Generator().manual_seed(seed)
    w1 = torch.randn(DIM, 64, generator=g) / DIM**0.5
    w2 = torch.randn(64, CLASSES, generator=g)
    x = torch.randn(4000, DIM, generator=g)
    y = (torch.tanh(x @ w1) @ w2).argmax(dim=1)
    x_train, y_train, x_test, y_test = split(x, y, 0.25, seed)
    x_fit, y_fit, x_val, y_val = split(x_train, y_train, 0.25, seed + 1)
    torch.manual_seed(seed)
    teacher = build_mlp(DIM, WIDTHS, CLASSES)
    train_classifier(teacher, x_fit, y_fit, steps=800, lr=2e-3, seed=seed)
    updates, rollouts, student_steps = (3, 4, 120) if quick else (10, 5, 250)
    result = n2n(
        teacher,
        x_fit,
        y_fit,
        x_val,
        y_val,
        removal_updates=updates,
        shrink_updates=updates,
        rollouts=rollouts,
        ratios=RATIOS,
        student_steps=student_steps,
        seed=seed,
    )
    teacher_params = sum(p.numel() for p in teacher.parameters())
    teacher_val = accuracy(teacher, x_val, y_val)

    def score(student: torch.nn.Sequential) -> tuple[float, torch.nn.Sequential]:
        torch.manual_seed(seed)
        train_classifier(student, x_fit, y_fit, steps=student_steps, lr=2e-3, seed=seed, teacher=teacher, kd_weight=0.9)
        params = sum(p.numel() for p in student.parameters())
        return n2n_reward(params, teacher_params, accuracy(student, x_val, y_val), teacher_val), student

    rng = torch.Generator().manual_seed(seed + 77)
    best_random = float("-inf")
    for _ in range(2 * updates * rollouts):
        keep = [True] + [bool(torch.rand(1, generator=rng) < 0.5) for _ in WIDTHS[1:]]
        student = drop_hidden_layers(teacher, keep)
        widths = [
            max(1, round(w * RATIOS[int(torch.randint(len(RATIOS), (1,), generator=rng))])) for w in mlp_widths(student)
        ]
        best_random = max(best_random, score(shrink_widths(student, widths))[0])
    uniform_reward, _ = score(shrink_widths(teacher, [w // 2 for w in WIDTHS]))
    torch.manual_seed(seed + 5)
    scratch = build_mlp(DIM, result.widths, CLASSES)
    _, scratch = score(scratch)
    teacher_test = accuracy(teacher, x_test, y_test)
    return {
        "n2n_reward": result.reward,
        "random_search_reward": best_random,
        "uniform_half_reward": uniform_reward,
        "n2n_compression": result.compression,
        "n2n_acc_ratio": accuracy(result.student, x_test, y_test) / teacher_test,
        "small_scratch_acc_ratio": accuracy(scratch, x_test, y_test) / teacher_test,
        "teacher_test_acc": teacher_test,
        "n2n_keep": list(result.keep),
        "n2n_widths": result.widths,
        "students_evaluated": result.evaluations,
    }


def main() -> None:
    """Run the benchmark and write one JSON object."""
    args = benchmark_args(__doc__, default_out="n2n_claim.json", seeds=4, quick_seeds=1)
    start = time.perf_counter()
    runs = [_run(seed, args.quick) for seed in args.seed_list]
    keys = [
        "n2n_reward",
        "random_search_reward",
        "uniform_half_reward",
        "n2n_compression",
        "n2n_acc_ratio",
        "small_scratch_acc_ratio",
        "teacher_test_acc",
    ]

    def mean(key: str) -> float:
        return statistics.mean(r[key] for r in runs)

    figures = {k: mean(k) for k in keys}
    figures["n2n_minus_random_reward"] = mean("n2n_reward") - mean("random_search_reward")
    write_result(
        args.out,
        figures,
        details={
            "quick": args.quick,
            "seeds": args.seed_list,
            "summary": {k: summarize([r[k] for r in runs]) for k in keys},
            "runs": runs,
            "seconds": time.perf_counter() - start,
        },
    )


if __name__ == "__main__":
    main()
