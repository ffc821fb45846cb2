"""GPICL claim: a transformer meta-trained on many random tasks (random projections of the inputs, permuted labels)
learns to learn in context: on unseen tasks its accuracy rises with the number of examples in its context, while
the same model trained on a small fixed pool of tasks memorises them and does not generalise to new tasks.

    python plugins/fusion/benchmarks/gpicl_claim.py --quick --out gpicl.json
"""

from __future__ import annotations

import torch
from malot_fusion.gpicl import GaussianTaskSource, ICLTransformer, in_context_accuracy, meta_train

from malot.benchmarking import benchmark_args, write_result


def main() -> None:
    args = benchmark_args(__doc__, default_out="gpicl_claim.json", seeds=1)
    torch.manual_seed(args.seed)
    dim, classes, length = 6, 3, 24
    steps, batch = (200, 32) if args.quick else (2000, 48)
    source = GaussianTaskSource(dim, classes, seed=args.seed)
    results: dict[str, dict[str, float]] = {}
    curves: dict[str, list[float]] = {}
    for name, n_tasks in (("many_tasks", None), ("four_tasks", 4)):
        torch.manual_seed(args.seed)
        model = ICLTransformer(dim + classes, classes, d=48, layers=2, heads=4, max_len=length)
        losses = meta_train(
            model, source, steps=steps, batch=batch, length=length, lr=2e-3, n_tasks=n_tasks, seed=args.seed
        )
        accuracy = in_context_accuracy(model, source, sequences=256, length=length, seed=args.seed + 777)
        curves[name] = accuracy.tolist()
        results[name] = {
            "first_positions_accuracy": float(accuracy[:2].mean()),
            "last_positions_accuracy": float(accuracy[-8:].mean()),
            "final_train_loss": sum(losses[-20:]) / 20,
        }
    write_result(
        args.out,
        {
            "unseen_task_accuracy_late": results["many_tasks"]["last_positions_accuracy"],
            "unseen_task_accuracy_early": results["many_tasks"]["first_positions_accuracy"],
            "fixed_pool_unseen_task_accuracy_late": results["four_tasks"]["last_positions_accuracy"],
            "chance_accuracy": 1.0 / classes,
        },
        details={
            "per_regime": results,
            "accuracy_by_position": curves,
            "meta_training_steps": steps,
            "input_dim": dim,
            "classes": classes,
            "sequence_length": length,
            "claim": "accuracy on unseen tasks rises with context when meta-trained on many tasks",
            "claim_holds": results["many_tasks"]["last_positions_accuracy"]
            > max(results["many_tasks"]["first_positions_accuracy"], 1.0 / classes) + 0.05,
        },
    )


if __name__ == "__main__":
    main()
