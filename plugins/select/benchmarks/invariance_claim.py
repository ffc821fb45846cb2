"""Role-of-invariance claim: a representation's invariance to the transformation that the target task treats as
nuisance predicts how well it transfers, better than its source accuracy does; the model pre-trained with the
target's invariance transfers best.

Source task: 8 glyph classes; target task: 8 *other* glyphs (a different glyph bank), with random translations as
nuisance. Candidate representations (a small MLP 100 → 64 → 32 trained on the source with the factors in its
training data varied): trained with translation, with rotation, with brightness, with noise, with all of them, and an
untrained network. Transfer: a logistic-regression probe on the frozen 32-d features, 160 target training images,
accuracy on 800 test images. Invariance: raw mean cosine of f(x) and f(T x) for T = translation. Figures: probe
accuracy per candidate, Spearman ρ across candidates of transfer accuracy with translation invariance and with
source accuracy (the obvious baseline predictor).

    python plugins/select/benchmarks/invariance_claim.py --quick --out invariance.json
"""

from __future__ import annotations

import numpy as np
import torch
from malot_select.core.factors import factor_pairs, generate
from malot_select.invariance import invariance
from scipy.stats import spearmanr
from torch import nn

from malot.benchmarking import benchmark_args, summarize, write_result

CANDIDATES: dict[str, tuple[str, ...] | None] = {
    "translate": ("translate",),
    "rotate": ("rotate",),
    "brightness": ("brightness",),
    "noise": ("noise",),
    "all": ("translate", "rotate", "brightness", "noise"),
    "untrained": None,
}


def run(seed: int, quick: bool) -> dict[str, object]:
    from sklearn.linear_model import LogisticRegression

    steps = 150 if quick else 400
    target_tr = generate(160, 8, vary=("translate",), seed=seed + 10, bank_seed=99)
    target_te = generate(800, 8, vary=("translate",), seed=seed + 11, bank_seed=99)
    pairs = factor_pairs(300, 8, "translate", vary=("translate",), seed=seed + 12, bank_seed=99)
    results = {}
    for name, vary in CANDIDATES.items():
        torch.manual_seed(seed)
        body = nn.Sequential(nn.Linear(100, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU())
        source_acc = 1.0 / 8
        if vary is not None:
            src = generate(2000, 8, vary=vary, seed=seed, bank_seed=0)
            src_te = generate(500, 8, vary=vary, seed=seed + 1, bank_seed=0)
            model = nn.Sequential(body, nn.Linear(32, 8))
            opt = torch.optim.Adam(model.parameters(), lr=3e-3)
            x, y = torch.tensor(src.images, dtype=torch.float32), torch.tensor(src.labels)
            for step in range(steps):
                idx = torch.randint(0, x.shape[0], (128,), generator=torch.Generator().manual_seed(seed * 1000 + step))
                loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            with torch.no_grad():
                pred = model(torch.tensor(src_te.images, dtype=torch.float32)).argmax(-1).numpy()
            source_acc = float(np.mean(pred == src_te.labels))

        def feats(images: np.ndarray, net: nn.Module = body) -> np.ndarray:
            with torch.no_grad():
                return net(torch.tensor(images, dtype=torch.float32)).double().numpy()

        probe = LogisticRegression(max_iter=2000).fit(feats(target_tr.images), target_tr.labels)
        transfer = float(probe.score(feats(target_te.images), target_te.labels))
        raw, _, normalised = invariance(feats(pairs[0]), feats(pairs[1]), seed=seed)
        results[name] = {
            "transfer": transfer,
            "source_accuracy": source_acc,
            "invariance": raw,
            "normalised_invariance": normalised,
        }
    names = list(results)
    transfer = [results[n]["transfer"] for n in names]
    return {
        "seed": seed,
        "candidates": results,
        "spearman_transfer_invariance": float(spearmanr(transfer, [results[n]["invariance"] for n in names]).statistic),
        "spearman_transfer_source_accuracy": float(
            spearmanr(transfer, [results[n]["source_accuracy"] for n in names]).statistic
        ),
    }


def main() -> None:
    args = benchmark_args(__doc__, default_out="invariance_claim.json", seeds=3, quick_seeds=1)
    runs = [run(seed, args.quick) for seed in args.seed_list]
    names = list(CANDIDATES)
    transfer = {n: summarize([r["candidates"][n]["transfer"] for r in runs]) for n in names}  # type: ignore[index]
    inv = {n: summarize([r["candidates"][n]["invariance"] for r in runs]) for n in names}  # type: ignore[index]
    rho_inv = summarize([r["spearman_transfer_invariance"] for r in runs])  # type: ignore[misc]
    rho_src = summarize([r["spearman_transfer_source_accuracy"] for r in runs])  # type: ignore[misc]
    figures = {f"transfer_accuracy_{n}": transfer[n]["mean"] for n in names}
    figures.update({f"translation_invariance_{n}": inv[n]["mean"] for n in names})
    figures["spearman_transfer_vs_invariance"] = rho_inv["mean"]
    figures["spearman_transfer_vs_source_accuracy"] = rho_src["mean"]
    best = max(names, key=lambda n: transfer[n]["mean"])
    write_result(
        args.out,
        figures,
        details={
            "transfer": transfer,
            "invariance": inv,
            "spearman_invariance": rho_inv,
            "spearman_source_accuracy": rho_src,
            "runs": runs,
            "best_transfer": best,
            "claim": "invariance to the target's nuisance predicts transfer better than source accuracy; the model "
            "trained with that invariance transfers best",
            "claim_holds_predictor": rho_inv["mean"] > rho_src["mean"],
            "claim_holds_best": best in ("translate", "all"),
        },
    )


if __name__ == "__main__":
    main()
