"""KRR-ST: pre-training on a distilled unlabelled set transfers better than pre-training on a random real subset of
the same size.

Lee et al. (ICLR 2024) distil an unlabelled dataset (targets: a self-supervised teacher's representations) into a
few synthetic pairs and show that pre-training on them and then fine-tuning/probing beats pre-training on the same
number of randomly chosen real images (with the teacher's targets) and no pre-training. Synthetic reproduction:
inputs are a non-linear 20-d view of a 4-d latent; the "teacher" representation of an input is its latent and a
non-linear feature of it (what a good self-supervised model recovers); the downstream task is a 4-class labelling of
the latent with 100 labelled samples. Each arm pre-trains the same MLP by regressing targets from inputs, then a
logistic-regression probe (scikit-learn) is fitted on the frozen features. Arms: KRR-ST distilled set of 20,
random real subset of 20 with teacher targets, no pre-training, and (upper reference) all real data.

    python plugins/data/benchmarks/distill_unlabeled_claim.py --quick --out distill_unlabeled.json
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from malot_data.distill_unlabeled import _extractor, krr_st, pretrain_regressor

from malot.benchmarking import benchmark_args, summarize, write_result

DIM, SIZE = 20, 20


def make_data(seed: int, n: int = 2000) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inputs, teacher representations and downstream labels."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 4, generator=g)
    x = torch.tanh(z @ torch.randn(4, DIM, generator=g)) + 0.1 * torch.randn(n, DIM, generator=g)
    teacher = torch.cat([z, torch.sin(z)], dim=1)
    y = (z[:, 0] * z[:, 1] > 0).long() + 2 * (z[:, 2] > 0).long()
    return x, teacher, y


def probe(extractor: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, labelled: int, train: int) -> float:
    """Logistic-regression probe on frozen features: ``labelled`` training labels, tested after ``train``."""
    from sklearn.linear_model import LogisticRegression

    with torch.no_grad():
        f = extractor(x).numpy()
    clf = LogisticRegression(max_iter=3000).fit(f[:labelled], y[:labelled].numpy())
    return float(clf.score(f[train:], y[train:].numpy()))


def one_seed(seed: int, steps: int) -> dict[str, Any]:
    """All arms on one draw."""
    torch.manual_seed(seed)
    x, t, y = make_data(seed)
    train = 1500
    result = krr_st(x[:train], t[:train], SIZE, steps=steps, seed=seed)
    idx = torch.randperm(train, generator=torch.Generator().manual_seed(seed + 1))[:SIZE]
    arms = {
        "krr_st": pretrain_regressor(result.x, result.y, seed=seed),
        "random_subset": pretrain_regressor(x[idx], t[idx], seed=seed),
        "no_pretraining": _extractor(DIM, 64, seed),
        "full_data": pretrain_regressor(x[:train], t[:train], seed=seed),
    }
    out: dict[str, Any] = {name: probe(g, x, y, 100, train) for name, g in arms.items()}
    out["outer_loss_first10"] = float(np.mean(result.losses[:10]))
    out["outer_loss_last10"] = float(np.mean(result.losses[-10:]))
    return out


def main() -> None:
    """Run the seeds and write the figures."""
    args = benchmark_args(
        __doc__, default_out="plugins/data/benchmarks/results/distill_unlabeled_claim.json", seeds=5, quick_seeds=2
    )
    steps = 200 if args.quick else 400
    runs = [one_seed(seed, steps) for seed in args.seed_list]
    names = ["krr_st", "random_subset", "no_pretraining", "full_data"]
    stats = {n: summarize([r[n] for r in runs]) for n in names}
    write_result(
        args.out,
        {
            "krr_st_probe_accuracy": stats["krr_st"]["mean"],
            "random_subset_probe_accuracy": stats["random_subset"]["mean"],
            "no_pretraining_probe_accuracy": stats["no_pretraining"]["mean"],
            "full_data_probe_accuracy": stats["full_data"]["mean"],
            "krr_st_minus_random": stats["krr_st"]["mean"] - stats["random_subset"]["mean"],
            "outer_loss_ratio_last_over_first": float(
                np.mean([r["outer_loss_last10"] / r["outer_loss_first10"] for r in runs])
            ),
        },
        details={"stats": stats, "steps": steps, "distilled_size": SIZE, "runs": runs},
    )


if __name__ == "__main__":
    main()
