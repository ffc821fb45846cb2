"""Adapt-∞ selection (pseudo-skill clusters, per-cluster scorer, coverage sampling, SemDeDup) against random and
single-score selection at the same budget.

Maharana et al. (2024) claim that, at a fixed data budget, selecting across gradient-based pseudo-skill clusters with
the most informative score per cluster and coverage-centric sampling keeps performance over all skills better than
random or score-only selection, especially on rare skills, and that SemDeDup removes redundant data first.
Synthetic reproduction: a pool of 3000 examples from 6 skills (each a cluster with its own 4-class labelling rule)
with very unequal sizes (40/30/12/10/5/3 %), 25 % extra near-duplicates of the biggest skill and 10 % label noise.
A model trained on a 5 % warm-up sample provides features and outputs. Each method picks 10 % of the pool; a fresh
model is trained on warm-up + selection and tested on a skill-balanced test set. Figure: mean per-skill accuracy
(and the worst skill's). Baselines: random selection, EL2N top-k (hardest first, the obvious score baseline), CCS
on EL2N without clusters, and Adapt-∞ without SemDeDup.

    python plugins/data/benchmarks/select_instructions_claim.py --quick --out select_instructions.json
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from malot_data.core.nets import make_mlp, penultimate, train_classifier
from malot_data.select_instructions import adapt_inf_select, candidate_scores, ccs_sample

from malot.benchmarking import benchmark_args, summarize, write_result

DIM, SKILLS, CLASSES = 16, 6, 4
SHARES = np.array([0.40, 0.30, 0.12, 0.10, 0.05, 0.03])


def make_pool(seed: int, n: int = 3000) -> dict[str, np.ndarray]:
    """Skills are clusters with their own labelling rule; duplicates of skill 0 and label noise are added."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(SKILLS, DIM)) * 3
    rules = rng.normal(size=(SKILLS, DIM, CLASSES))

    def draw(skill: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = centres[skill] + rng.normal(size=(skill.size, DIM))
        y = np.einsum("nd,ndc->nc", x - centres[skill], rules[skill]).argmax(axis=1)
        return x, y

    skill = rng.choice(SKILLS, size=n, p=SHARES)
    x, y = draw(skill)
    dup_src = rng.choice(np.flatnonzero(skill == 0), size=n // 4)
    x = np.vstack([x, x[dup_src] + 1e-3 * rng.normal(size=(dup_src.size, DIM))])
    y = np.concatenate([y, y[dup_src]])
    skill = np.concatenate([skill, skill[dup_src]])
    noisy = rng.random(y.size) < 0.10
    y_obs = np.where(noisy, rng.integers(0, CLASSES, y.size), y)
    test_skill = np.repeat(np.arange(SKILLS), 300)
    xt, yt = draw(test_skill)
    return {"x": x, "y": y_obs, "skill": skill, "xt": xt, "yt": yt, "test_skill": test_skill}


def fit_eval(pool: dict[str, np.ndarray], idx: np.ndarray, seed: int, steps: int) -> tuple[float, float]:
    """Train a fresh model on ``idx``; mean and worst per-skill test accuracy."""
    model = make_mlp(DIM, CLASSES, 64, seed=seed)
    x = torch.tensor(pool["x"][idx], dtype=torch.float32)
    y = torch.tensor(pool["y"][idx])
    train_classifier(model, x, y, steps=steps, seed=seed)
    with torch.no_grad():
        pred = model(torch.tensor(pool["xt"], dtype=torch.float32)).argmax(dim=1).numpy()
    per_skill = [
        float((pred[pool["test_skill"] == s] == pool["yt"][pool["test_skill"] == s]).mean()) for s in range(SKILLS)
    ]
    return float(np.mean(per_skill)), float(np.min(per_skill))


def one_seed(seed: int, steps: int) -> dict[str, Any]:
    """Every selection method on one pool."""
    pool = make_pool(seed)
    n = pool["y"].size
    rng = np.random.default_rng(seed)
    warm = rng.choice(n, size=n // 20, replace=False)
    rest = np.setdiff1d(np.arange(n), warm)
    budget = n // 10
    model = make_mlp(DIM, CLASSES, 64, seed=seed + 1)
    train_classifier(
        model, torch.tensor(pool["x"][warm], dtype=torch.float32), torch.tensor(pool["y"][warm]), steps=steps, seed=seed
    )
    with torch.no_grad():
        xr = torch.tensor(pool["x"][rest], dtype=torch.float32)
        feats = penultimate(model, xr).numpy()
        probs = torch.softmax(model(xr), dim=1).numpy()
    labels = pool["y"][rest]
    el2n = candidate_scores(probs, labels)["el2n"]
    selections = {
        "adapt_inf": adapt_inf_select(
            feats, probs, labels, budget, clusters=8, dim=32, dedup_eps=0.01, seed=seed
        ).indices,
        "adapt_inf_no_dedup": adapt_inf_select(feats, probs, labels, budget, clusters=8, dim=32, seed=seed).indices,
        "random": sorted(rng.choice(rest.size, size=budget, replace=False).tolist()),
        "el2n_topk": sorted(np.argsort(-el2n, kind="stable")[:budget].tolist()),
        "ccs_el2n": ccs_sample(el2n, budget, seed=seed),
    }
    out: dict[str, Any] = {}
    for name, chosen in selections.items():
        idx = np.concatenate([warm, rest[np.asarray(chosen, dtype=np.int64)]])
        mean_acc, worst = fit_eval(pool, idx, seed, steps)
        picked_skill = pool["skill"][rest[np.asarray(chosen, dtype=np.int64)]]
        out[name] = {
            "mean_skill_accuracy": mean_acc,
            "worst_skill_accuracy": worst,
            "skill_counts": np.bincount(picked_skill, minlength=SKILLS).tolist(),
        }
    return out


def main() -> None:
    """Run the seeds and write the figures."""
    args = benchmark_args(
        __doc__, default_out="plugins/data/benchmarks/results/select_instructions_claim.json", seeds=5, quick_seeds=2
    )
    steps = 300 if args.quick else 500
    runs = [one_seed(seed, steps) for seed in args.seed_list]
    names = list(runs[0])
    stats = {
        n: {k: summarize([r[n][k] for r in runs]) for k in ("mean_skill_accuracy", "worst_skill_accuracy")}
        for n in names
    }
    figures = {f"{n}_mean_skill_accuracy": stats[n]["mean_skill_accuracy"]["mean"] for n in names}
    figures.update({f"{n}_worst_skill_accuracy": stats[n]["worst_skill_accuracy"]["mean"] for n in names})
    figures["adapt_inf_minus_random"] = figures["adapt_inf_mean_skill_accuracy"] - figures["random_mean_skill_accuracy"]
    write_result(args.out, figures, details={"stats": stats, "steps": steps, "runs": runs})


if __name__ == "__main__":
    main()
