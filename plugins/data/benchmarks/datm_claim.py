"""DATM: difficulty-aligned trajectory matching with soft labels against plain trajectory matching (MTT) and real
subsets of the same size.

Guo et al. (ICLR 2024) claim that matching expert trajectories from a stage that fits the budget (early epochs for few
images per class, later ones for many) and learning soft labels initialised from expert logits distils better sets
than MTT (hard labels, one fixed window) and than random real subsets. Synthetic reproduction: 10 classes, each a
mixture of 4 Gaussian modes in 32-d; experts are small MLPs trained on 2000 real samples (12 epochs each). At IPC 1
and 10: (a) DATM (``datm``: soft labels, window from ``difficulty_window``, upper bound growing during distillation),
(b) MTT (hard labels, window [0, T⁺] fixed), (c) random real samples with hard labels, and (d) random real samples
with the expert's soft labels (the obvious soft-label baseline). Every set trains a fresh MLP with the same recipe
(Adam, 300 steps) and is tested on 1000 held-out samples.

    python plugins/data/benchmarks/datm_claim.py --quick --out datm.json
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from malot_data.core.functional import functional_forward
from malot_data.core.nets import accuracy, make_mlp, train_classifier
from malot_data.datm_distill import datm, difficulty_window, expert_trajectories

from malot.benchmarking import benchmark_args, summarize, write_result

DIM, CLASSES, EPOCHS, EXPERT_EPOCHS = 32, 10, 12, 2


def make_data(seed: int, n: int = 3000) -> tuple[torch.Tensor, torch.Tensor]:
    """Ten classes, four Gaussian modes each."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(CLASSES, 4, DIM, generator=g) * 1.2
    y = torch.randint(CLASSES, (n,), generator=g)
    return centres[y, torch.randint(4, (n,), generator=g)] + torch.randn(n, DIM, generator=g), y


def evaluate(x: torch.Tensor, y: torch.Tensor, xt: torch.Tensor, yt: torch.Tensor, seed: int) -> float:
    """Test accuracy of a fresh MLP trained on ``(x, y)`` (y: labels or soft labels), averaged over 2 inits."""
    accs = []
    for s in range(2):
        model = make_mlp(DIM, CLASSES, 64, seed=1000 + seed * 10 + s)
        train_classifier(model, x, y, steps=300, batch_size=256, seed=s)
        accs.append(accuracy(model, xt, yt))
    return float(np.mean(accs))


def one_seed(seed: int, iterations: int) -> dict[str, Any]:
    """Experts, then every arm at each IPC."""
    torch.manual_seed(seed)
    x, y = make_data(seed)
    xtr, ytr, xte, yte = x[:2000], y[:2000], x[2000:], y[2000:]
    model = make_mlp(DIM, CLASSES, 64, seed=seed)
    trajectories = expert_trajectories(model, xtr, ytr, experts=3, epochs=EPOCHS, seed=seed)
    out: dict[str, Any] = {}
    for ipc in (1, 10):
        g = torch.Generator().manual_seed(seed + ipc)
        idx = torch.cat(
            [
                torch.nonzero(ytr == c).squeeze(1)[torch.randperm(int((ytr == c).sum()), generator=g)[:ipc]]
                for c in range(CLASSES)
            ]
        )
        window = difficulty_window(ipc, EPOCHS, EXPERT_EPOCHS)
        with torch.no_grad():
            soft_real = torch.softmax(functional_forward(model, trajectories[0][window[1]], xtr[idx]), dim=1)
        d = datm(
            model,
            xtr,
            ytr,
            trajectories,
            ipc,
            iterations=iterations,
            expert_epochs=EXPERT_EPOCHS,
            final_upper=min(EPOCHS - EXPERT_EPOCHS, window[1] + 2),
            soft_labels=True,
            seed=seed,
        )
        m = datm(
            model,
            xtr,
            ytr,
            trajectories,
            ipc,
            iterations=iterations,
            expert_epochs=EXPERT_EPOCHS,
            window=(0, window[1]),
            soft_labels=False,
            seed=seed,
        )
        assert d.label_logits is not None
        out[f"ipc{ipc}"] = {
            "datm": evaluate(d.x, torch.softmax(d.label_logits, dim=1), xte, yte, seed),
            "mtt": evaluate(m.x, m.labels, xte, yte, seed),
            "random_real": evaluate(xtr[idx], ytr[idx], xte, yte, seed),
            "random_real_soft": evaluate(xtr[idx], soft_real, xte, yte, seed),
            "datm_loss_first10": float(np.mean(d.losses[:10])),
            "datm_loss_last10": float(np.mean(d.losses[-10:])),
            "window": list(d.window),
        }
    full = make_mlp(DIM, CLASSES, 64, seed=seed + 99)
    train_classifier(full, xtr, ytr, steps=600, seed=seed)
    out["full_data"] = accuracy(full, xte, yte)
    return out


def main() -> None:
    """Run the seeds and write the figures."""
    args = benchmark_args(
        __doc__, default_out="plugins/data/benchmarks/results/datm_claim.json", seeds=3, quick_seeds=1
    )
    iterations = 80 if args.quick else 300
    runs = [one_seed(seed, iterations) for seed in args.seed_list]
    arms = ["datm", "mtt", "random_real", "random_real_soft"]
    stats = {f"ipc{i}": {a: summarize([r[f"ipc{i}"][a] for r in runs]) for a in arms} for i in (1, 10)}
    figures: dict[str, float] = {}
    for ipc in (1, 10):
        for arm in arms:
            figures[f"{arm}_accuracy_ipc{ipc}"] = stats[f"ipc{ipc}"][arm]["mean"]
        figures[f"datm_minus_mtt_ipc{ipc}"] = stats[f"ipc{ipc}"]["datm"]["mean"] - stats[f"ipc{ipc}"]["mtt"]["mean"]
        figures[f"datm_loss_ratio_ipc{ipc}"] = float(
            np.mean([r[f"ipc{ipc}"]["datm_loss_last10"] / r[f"ipc{ipc}"]["datm_loss_first10"] for r in runs])
        )
    figures["full_data_accuracy"] = float(np.mean([r["full_data"] for r in runs]))
    write_result(args.out, figures, details={"stats": stats, "iterations": iterations, "runs": runs})


if __name__ == "__main__":
    main()
