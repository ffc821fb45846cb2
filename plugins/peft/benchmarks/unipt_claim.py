"""UniPT claim: memory-efficient like side-tuning, but more accurate than Ladder Side-Tuning.

Diao et al. (CVPR 2024) report that UniPT, which never backpropagates through the backbone, uses less training
memory than LST and other memory-efficient methods while reaching higher accuracy. Toy reproduction (set-up in
``side_common.py``): accuracy on ``least`` from a backbone pre-trained on ``most``, accounted training memory on one
batch and the measured peak RSS of a fresh process. Baselines in the same run: head only (the simple baseline), full
fine-tuning, LST (same width d/4).

    python plugins/peft/benchmarks/unipt_claim.py --quick --out unipt_claim.json

Top-level figures: accuracies, ``*_memory_ratio_vs_full_ft``, ``unipt_minus_lst_acc`` and
``unipt_memory_saving_vs_lst`` (above 0 reproduces), ``unipt_minus_head_only_acc``, ``*_peak_rss_mib``.
"""

from __future__ import annotations

from side_common import run_benchmark


def main() -> None:
    """Run the benchmark and write one JSON object."""
    run_benchmark(
        __doc__,
        "unipt_claim",
        ("head_only", "full_ft", "lst", "unipt"),
        ("full_ft", "lst", "unipt"),
        {
            "unipt_minus_lst_acc": lambda r: r["unipt_acc"] - r["lst_acc"],
            "unipt_memory_saving_vs_lst": lambda r: 1 - r["unipt_memory_bytes"] / r["lst_memory_bytes"],
            "unipt_memory_saving_vs_full_ft": lambda r: 1 - r["unipt_memory_bytes"] / r["full_ft_memory_bytes"],
            "unipt_minus_head_only_acc": lambda r: r["unipt_acc"] - r["head_only_acc"],
        },
        ("head_only", "full_ft", "lst", "unipt"),
    )


if __name__ == "__main__":
    main()
