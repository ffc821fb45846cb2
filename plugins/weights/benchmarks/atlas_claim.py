"""aTLAS: learned anisotropic (per-block) scaling of task vectors beats task arithmetic's one scale per task.

Zhang et al. (2024) learn one coefficient per parameter block and task vector from a few labelled examples (or
without labels, minimising the entropy of the predictions) and compose knowledge better than task arithmetic, which
scales a whole task vector by one number. Small synthetic reproduction: a pre-trained two-layer classifier (the
weights of a teacher network); task A's teacher perturbs both layers of it, task B's teacher perturbs both layers
differently; models fine-tuned on A and on B give two task vectors. The target task's teacher has A's first layer
and B's second layer, so the right composition is anisotropic. From 128 labelled target examples we compare

- task arithmetic with the best (c_A, c_B) on a 7x7 grid from 0 to 1.5, chosen on those examples,
- task arithmetic with (c_A, c_B) learned by the same optimiser as aTLAS (``granularity="model"``),
- aTLAS with one coefficient per tensor and task, learned on those examples (supervised),
- aTLAS learned without labels on 512 target inputs (entropy objective), against the pre-trained model,

all on 4000 held-out target examples, over several seeds.

    python plugins/weights/benchmarks/atlas_claim.py --quick --out atlas_claim.json

Figures: ``atlas_accuracy``, ``task_arithmetic_accuracy`` (the grid search), ``accuracy_gain_vs_task_arithmetic``;
the other variants, the pre-trained model and the "ideal" composition (A's first layer + B's second, coefficient 1)
under ``details``.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import torch
from malot_weights.core import task_vector
from malot_weights.task_vectors import learn_atlas, task_arithmetic_states

from malot.benchmarking import benchmark_args, mean, write_result

DIM, HIDDEN, CLASSES = 16, 64, 8
FIRST, SECOND = ("0.weight", "0.bias"), ("2.weight", "2.bias")
State = dict[str, torch.Tensor]


def make_model() -> torch.nn.Module:
    """Two layers with a tanh in between."""
    return torch.nn.Sequential(torch.nn.Linear(DIM, HIDDEN), torch.nn.Tanh(), torch.nn.Linear(HIDDEN, CLASSES))


def one_seed(seed: int, finetune_steps: int, atlas_steps: int, shots: int) -> dict[str, Any]:
    """Build the teachers, fine-tune on A and B, compose for the target five ways, evaluate."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    arch = make_model()
    base = {k: v.detach().clone() * (2.0 if k.endswith("weight") else 1.0) for k, v in arch.state_dict().items()}

    def perturbed() -> State:
        return {k: v + 0.35 * v.std() * torch.randn(v.shape, generator=g) for k, v in base.items()}

    teacher_a, teacher_b = perturbed(), perturbed()
    target = {k: (teacher_a[k] if k in FIRST else teacher_b[k]) for k in base}

    def data(teacher: State, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(n, DIM, generator=g)
        with torch.no_grad():
            return x, torch.func.functional_call(arch, teacher, (x,)).argmax(-1)

    def accuracy(state: State, x: torch.Tensor, y: torch.Tensor) -> float:
        with torch.no_grad():
            return float((torch.func.functional_call(arch, state, (x,)).argmax(-1) == y).float().mean())

    def finetune(teacher: State) -> State:
        model = make_model()
        model.load_state_dict(base)
        opt = torch.optim.Adam(model.parameters(), lr=2e-3)
        x, y = data(teacher, 4000)
        for _ in range(finetune_steps):
            idx = torch.randint(0, 4000, (128,), generator=g)
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        return {k: v.detach().clone() for k, v in model.state_dict().items()}

    ft_a, ft_b = finetune(teacher_a), finetune(teacher_b)
    vectors = [task_vector(ft_a, base), task_vector(ft_b, base)]
    shot_x, shot_y = data(target, shots)
    test_x, test_y = data(target, 4000)
    grid = [i / 4 for i in range(7)]
    best = max(
        itertools.product(grid, grid),
        key=lambda c: accuracy(task_arithmetic_states(base, [ft_a, ft_b], c), shot_x, shot_y),
    )
    common = {"steps": atlas_steps, "lr": 0.05, "init": 0.3, "base": base}
    anisotropic = learn_atlas(arch, vectors, [(shot_x, shot_y)], granularity="tensor", **common)  # type: ignore[arg-type]
    isotropic = learn_atlas(arch, vectors, [(shot_x, shot_y)], granularity="model", **common)  # type: ignore[arg-type]
    unlabelled = data(target, 512)[0]
    entropy = learn_atlas(arch, vectors, [unlabelled], objective="entropy", **common)  # type: ignore[arg-type]
    ideal = {k: base[k] + (vectors[0][k] if k in FIRST else vectors[1][k]) for k in base}
    return {
        "seed": seed,
        "pretrained": accuracy(base, test_x, test_y),
        "task_arithmetic_grid": accuracy(task_arithmetic_states(base, [ft_a, ft_b], best), test_x, test_y),
        "task_arithmetic_grid_coefficients": list(best),
        "task_arithmetic_learned": accuracy(isotropic.state, test_x, test_y),
        "atlas_supervised": accuracy(anisotropic.state, test_x, test_y),
        "atlas_entropy": accuracy(entropy.state, test_x, test_y),
        "ideal_composition": accuracy(ideal, test_x, test_y),
        "finetuned_on_own_task": [accuracy(ft_a, *data(teacher_a, 2000)), accuracy(ft_b, *data(teacher_b, 2000))],
        "atlas_weight_coefficients": {k: anisotropic.coefficients[k] for k in ("0.weight", "2.weight")},
    }


def main() -> None:
    """Run every seed and write the report."""
    opts = benchmark_args(__doc__, default_out="atlas_claim.json", seeds=10, quick_seeds=3)
    seeds = opts.seed_list
    finetune_steps = 600 if opts.quick else 1000
    atlas_steps = 150
    shots = 128
    start = time.perf_counter()
    runs = [one_seed(s, finetune_steps, atlas_steps, shots) for s in seeds]
    atlas_acc = mean([r["atlas_supervised"] for r in runs])
    ta_acc = mean([r["task_arithmetic_grid"] for r in runs])
    write_result(
        opts.out,
        {
            "atlas_accuracy": atlas_acc,
            "task_arithmetic_accuracy": ta_acc,
            "accuracy_gain_vs_task_arithmetic": atlas_acc - ta_acc,
        },
        details={
            "pretrained_accuracy": mean([r["pretrained"] for r in runs]),
            "task_arithmetic_learned_accuracy": mean([r["task_arithmetic_learned"] for r in runs]),
            "atlas_entropy_accuracy": mean([r["atlas_entropy"] for r in runs]),
            "ideal_composition_accuracy": mean([r["ideal_composition"] for r in runs]),
            "atlas_wins_vs_grid": sum(r["atlas_supervised"] > r["task_arithmetic_grid"] for r in runs),
            "shots": shots,
            "seeds": len(runs),
            "finetune_steps": finetune_steps,
            "atlas_steps": atlas_steps,
            "runs": runs,
            "wall_s": round(time.perf_counter() - start, 2),
        },
    )


if __name__ == "__main__":
    main()
