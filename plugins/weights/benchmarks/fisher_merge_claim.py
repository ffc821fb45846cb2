"""Fisher merging beats plain parameter averaging when merging models fine-tuned on different tasks.

Matena & Raffel (2022) merge models fine-tuned from one pre-trained model on different tasks; weighting each
parameter by each model's diagonal Fisher keeps what each model relies on, where plain averaging dilutes it. This is
a small synthetic reproduction: a shared two-layer body with one classification head per task is pre-trained on a
third task, then fine-tuned on task A (inputs in the first half of the input space, head A) and on task B (inputs
in the second half, head B). The two fine-tuned models are merged by plain averaging and by ``fisher_merge``
(Fisher estimated on each model's own task inputs with labels sampled from the model); the merged model is
evaluated on both tasks with the matching head. Repeated over seeds.

    python plugins/weights/benchmarks/fisher_merge_claim.py --quick --out fisher_merge_claim.json

Figures: ``fisher_merge_accuracy`` and ``plain_average_accuracy`` (mean over both tasks and all seeds, held-out
data), ``accuracy_gain_vs_average`` (their difference); the fine-tuned models' own accuracies under ``details``.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from malot_weights.core import diagonal_fisher, weighted_average
from malot_weights.fisher import fisher_merge_states

from malot.benchmarking import benchmark_args, mean, write_result

DIM, HIDDEN, CLASSES = 16, 32, 4


class TwoHeads(torch.nn.Module):
    """A shared body and one head per task; ``task`` chooses the head."""

    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(DIM, HIDDEN), torch.nn.Tanh())
        self.heads = torch.nn.ModuleList([torch.nn.Linear(HIDDEN, CLASSES) for _ in range(3)])

    def forward(self, x: torch.Tensor, task: int = 0) -> torch.Tensor:
        out: torch.Tensor = self.heads[task](self.body(x))
        return out


def make_task(seed: int, dims: slice) -> tuple[torch.Tensor, torch.Tensor]:
    """A random teacher task whose inputs live on ``dims`` (zero elsewhere)."""
    g = torch.Generator().manual_seed(seed)
    teacher = torch.randn(DIM, CLASSES, generator=g)
    x = torch.zeros(4000, DIM)
    x[:, dims] = torch.randn(4000, dims.stop - dims.start, generator=g)
    return x, (x @ teacher).argmax(-1)


def train(model: TwoHeads, task: int, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float, seed: int) -> None:
    """Mini-batch Adam on one task's head and the shared body."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam([*model.body.parameters(), *model.heads[task].parameters()], lr=lr)
    for _ in range(steps):
        idx = torch.randint(0, x.shape[0], (64,), generator=g)
        loss = torch.nn.functional.cross_entropy(model(x[idx], task), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()


def accuracy(model: TwoHeads, state: dict[str, torch.Tensor], task: int, x: torch.Tensor, y: torch.Tensor) -> float:
    """Held-out accuracy of ``state`` loaded into ``model``'s architecture."""
    with torch.no_grad():
        logits = torch.func.functional_call(model, state, (x,), {"task": task})
    return float((logits.argmax(-1) == y).float().mean())


def one_seed(seed: int, steps: int, fisher_examples: int) -> dict[str, Any]:
    """Pre-train, fine-tune on A and B, merge both ways, evaluate."""
    torch.manual_seed(seed)
    half = DIM // 2
    pre_x, pre_y = make_task(1000 + seed, slice(0, DIM))
    a_x, a_y = make_task(2000 + seed, slice(0, half))
    b_x, b_y = make_task(3000 + seed, slice(half, DIM))
    base = TwoHeads()
    train(base, 2, pre_x, pre_y, steps, 1e-2, seed)
    models = []
    for task, (x, y) in ((0, (a_x, a_y)), (1, (b_x, b_y))):
        model = TwoHeads()
        model.load_state_dict(base.state_dict())
        train(model, task, x[:3000], y[:3000], steps, 1e-2, seed + task + 1)
        models.append(model)
    states = [{k: v.detach().clone() for k, v in m.state_dict().items()} for m in models]
    fishers = [
        diagonal_fisher(
            m,
            [x[i : i + 1] for i in range(fisher_examples)],
            forward=lambda mod, ex, t=task: mod(ex, t),
            labels="sample",
            seed=seed,
        )
        for task, (m, x) in enumerate(zip(models, (a_x, b_x), strict=True))
    ]
    averaged = weighted_average(states)
    fisher = fisher_merge_states(states, fishers)
    tests = [(0, a_x[3000:], a_y[3000:]), (1, b_x[3000:], b_y[3000:])]
    ref = models[0]
    return {
        "seed": seed,
        "finetuned": [accuracy(ref, states[t], t, x, y) for t, x, y in tests],
        "plain_average": [accuracy(ref, averaged, t, x, y) for t, x, y in tests],
        "fisher_merge": [accuracy(ref, fisher, t, x, y) for t, x, y in tests],
    }


def main() -> None:
    """Run every seed and write the report."""
    opts = benchmark_args(__doc__, default_out="fisher_merge_claim.json", seeds=10, quick_seeds=3)
    seeds = opts.seed_list
    steps = 200 if opts.quick else 600
    fisher_examples = 100 if opts.quick else 300
    start = time.perf_counter()
    runs = [one_seed(s, steps, fisher_examples) for s in seeds]
    fisher_acc = mean([mean(r["fisher_merge"]) for r in runs])
    avg_acc = mean([mean(r["plain_average"]) for r in runs])
    write_result(
        opts.out,
        {
            "fisher_merge_accuracy": fisher_acc,
            "plain_average_accuracy": avg_acc,
            "accuracy_gain_vs_average": fisher_acc - avg_acc,
        },
        details={
            "finetuned_accuracy": mean([mean(r["finetuned"]) for r in runs]),
            "fisher_wins": sum(mean(r["fisher_merge"]) > mean(r["plain_average"]) for r in runs),
            "seeds": len(runs),
            "runs": runs,
            "train_steps": steps,
            "fisher_examples": fisher_examples,
            "setup": "shared tanh body + per-task heads, pre-trained on a third task; task A inputs on dims 0-7, "
            "task B on dims 8-15; Fisher with labels sampled from each model on its own task inputs",
            "wall_s": round(time.perf_counter() - start, 2),
        },
    )


if __name__ == "__main__":
    main()
