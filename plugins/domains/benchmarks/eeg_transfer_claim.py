"""EEG transfer claim: pre-training on source subjects and fine-tuning on a few labelled trials of a new subject
beats training from scratch on those trials, and beats the source model used as is.

Synthetic motor-imagery-like EEG (``malot_domains.core.synthetic.eeg_trials``: two mu-rhythm sources whose
contralateral amplitude drops with the imagined hand, six background sources, a subject-specific mixing matrix and
peak frequency, sensor noise); 5 subjects, 40 trials per class each; the last subject is the target. Every method
uses the same MNE band-pass (4-30 Hz), the same Shallow ConvNet and the same calibration trials. Baselines in the
same run: scratch (target trials only), source-only (zero-shot), and pooled (one network trained from scratch on
the source trials plus the calibration trials: the simple baseline a reviewer tries first).

    python plugins/domains/benchmarks/eeg_transfer_claim.py --quick --out eeg.json

Figures: held-out target accuracy of ``transfer``, ``scratch``, ``source_only`` and ``pooled`` (mean over seeds and
calibration sizes), ``transfer_minus_scratch`` and ``transfer_minus_pooled``.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import numpy as np
from malot_domains.core.synthetic import eeg_trials
from malot_domains.eeg import accuracy, bandpass, few_label_split, shallow_net, train_classifier

from malot.benchmarking import benchmark_args, summarize, write_result


def one_seed(seed: int, shots: list[int], pretrain_steps: int) -> list[dict[str, Any]]:
    """One synthetic cohort; every calibration size in ``shots``."""
    start = time.perf_counter()
    x, y, subject = eeg_trials(seed, subjects=5, trials_per_class=40)
    xf = bandpass(x, 100.0, 4.0, 30.0)
    target = subject == 4
    xs, ys, xt, yt = xf[~target], y[~target], xf[target], y[target]
    source_model = shallow_net(x.shape[1], x.shape[2], 2)
    train_classifier(source_model, xs, ys, steps=pretrain_steps, lr=3e-3, seed=seed)
    rows = []
    for k in shots:
        train, test = few_label_split(yt, k, seed)
        tuned = copy.deepcopy(source_model)
        train_classifier(tuned, xt[train], yt[train], steps=60, lr=1e-3, seed=seed)
        scratch = shallow_net(x.shape[1], x.shape[2], 2)
        train_classifier(scratch, xt[train], yt[train], steps=60, lr=3e-3, seed=seed)
        pooled = shallow_net(x.shape[1], x.shape[2], 2)
        px, py = np.concatenate([xs, xt[train]]), np.concatenate([ys, yt[train]])
        train_classifier(pooled, px, py, steps=pretrain_steps, lr=3e-3, seed=seed)
        rows.append(
            {
                "seed": seed,
                "labels_per_class": k,
                "transfer": accuracy(tuned, xt[test], yt[test]),
                "scratch": accuracy(scratch, xt[test], yt[test]),
                "source_only": accuracy(source_model, xt[test], yt[test]),
                "pooled": accuracy(pooled, xt[test], yt[test]),
                "seconds": time.perf_counter() - start,
            }
        )
    return rows


def main() -> None:
    args = benchmark_args(
        __doc__, default_out="plugins/domains/benchmarks/results/eeg_transfer_claim.json", seeds=3, quick_seeds=1
    )
    shots, steps = ([4], 120) if args.quick else ([2, 5, 10], 200)
    rows = [row for seed in args.seed_list for row in one_seed(seed, shots, steps)]
    keys = ["transfer", "scratch", "source_only", "pooled"]
    stats = {k: summarize([r[k] for r in rows]) for k in keys}
    per_shot = {str(k): {m: summarize([r[m] for r in rows if r["labels_per_class"] == k]) for m in keys} for k in shots}
    figures = {k: stats[k]["mean"] for k in keys}
    figures["transfer_minus_scratch"] = figures["transfer"] - figures["scratch"]
    figures["transfer_minus_pooled"] = figures["transfer"] - figures["pooled"]
    write_result(args.out, figures, details={"quick": args.quick, "stats": stats, "per_shot": per_shot, "runs": rows})


if __name__ == "__main__":
    main()
