"""SHERL claim: better accuracy than other memory-efficient methods at low memory; the late route matters.

Diao et al. (ECCV 2024) report that SHERL beats memory-efficient baselines (LST, UniPT) in accuracy while keeping
training memory far below full fine-tuning, and that the late route through the last pretrained layers adds
accuracy over the early aggregation alone. Toy reproduction (set-up in ``side_common.py``): accuracy on ``least``
from a backbone pre-trained on ``most``; accounted training memory on one batch and the measured peak RSS of a fresh
process. SHERL uses 1 late layer of 3. Baselines in the same run: head only (the simple baseline), full
fine-tuning, LST, UniPT, and SHERL without the late route (ablation).

    python plugins/peft/benchmarks/sherl_claim.py --quick --out sherl_claim.json

Top-level figures: accuracies, ``*_memory_ratio_vs_full_ft``, ``sherl_minus_unipt_acc``, ``sherl_minus_lst_acc``,
``late_route_gain_acc`` and ``sherl_memory_saving_vs_full_ft`` (above 0 reproduces), ``*_peak_rss_mib``.
"""

from __future__ import annotations

from side_common import run_benchmark


def main() -> None:
    """Run the benchmark and write one JSON object."""
    run_benchmark(
        __doc__,
        "sherl_claim",
        ("head_only", "full_ft", "lst", "unipt", "sherl", "sherl_early_only"),
        ("full_ft", "sherl"),
        {
            "sherl_minus_unipt_acc": lambda r: r["sherl_acc"] - r["unipt_acc"],
            "sherl_minus_lst_acc": lambda r: r["sherl_acc"] - r["lst_acc"],
            "late_route_gain_acc": lambda r: r["sherl_acc"] - r["sherl_early_only_acc"],
            "sherl_memory_saving_vs_full_ft": lambda r: 1 - r["sherl_memory_bytes"] / r["full_ft_memory_bytes"],
            "sherl_minus_head_only_acc": lambda r: r["sherl_acc"] - r["head_only_acc"],
        },
        ("head_only", "full_ft", "lst", "unipt", "sherl", "sherl_early_only"),
    )


if __name__ == "__main__":
    main()
