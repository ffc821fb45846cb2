"""Ladder Side-Tuning claim: far lower training memory than full fine-tuning and than LoRA/adapters, at close accuracy.

Sung et al. (NeurIPS 2022) report that LST cuts training memory by 69% against full fine-tuning (and well below
adapters and LoRA, which still backpropagate through the backbone) with competitive accuracy. Toy reproduction (set-up
in ``side_common.py``): accuracy on the ``least`` task from a backbone pre-trained on ``most``; training memory
accounted on one batch (saved activations + gradients + Adam state) and measured as the peak RSS of a fresh process.
Baselines in the same run: head only (the simple baseline), full fine-tuning, LoRA (r=8 at W_q, W_v), sequential
adapter (r=16 at the FFN).

    python plugins/peft/benchmarks/lst_claim.py --quick --out lst_claim.json

Top-level figures: accuracies, ``*_memory_ratio_vs_full_ft`` (accounted; below 1 saves memory),
``lst_memory_saving_vs_lora`` / ``..._vs_adapter`` / ``..._vs_full_ft`` (1 − ratio; above 0 reproduces),
``lst_minus_lora_acc`` (the accuracy cost), and ``*_peak_rss_mib`` (measured).
"""

from __future__ import annotations

from side_common import run_benchmark


def main() -> None:
    """Run the benchmark and write one JSON object."""
    run_benchmark(
        __doc__,
        "lst_claim",
        ("head_only", "full_ft", "lora", "adapter", "lst"),
        ("full_ft", "lora", "lst"),
        {
            "lst_memory_saving_vs_full_ft": lambda r: 1 - r["lst_memory_bytes"] / r["full_ft_memory_bytes"],
            "lst_memory_saving_vs_lora": lambda r: 1 - r["lst_memory_bytes"] / r["lora_memory_bytes"],
            "lst_memory_saving_vs_adapter": lambda r: 1 - r["lst_memory_bytes"] / r["adapter_memory_bytes"],
            "lst_minus_lora_acc": lambda r: r["lst_acc"] - r["lora_acc"],
            "lst_minus_head_only_acc": lambda r: r["lst_acc"] - r["head_only_acc"],
        },
        ("head_only", "full_ft", "lora", "adapter", "lst"),
    )


if __name__ == "__main__":
    main()
