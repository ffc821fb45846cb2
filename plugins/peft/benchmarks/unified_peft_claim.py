"""Unified-view PEFT claim: parallel beats sequential adapters, FFN beats attention, MAM is the best design.

He et al. (ICLR 2022) find, at matched parameter budgets: (1) parallel insertion beats sequential insertion; (2)
modifying the FFN beats modifying attention (LoRA/prefix at attention vs adapters at the FFN) once the budget is not
tiny; (3) a scaled parallel adapter (``s = 4``) beats ``s = 1``; (4) MAM (prefix at attention + scaled parallel
adapter at the FFN) is the best combination. Toy reproduction: a TinyTransformer pre-trained on the ``most`` task
(see ``peft_common.py``) is adapted to the ``least`` task from 512 labelled sequences (``--train-size``). Every PEFT
method trains its own modules plus a new task head for the same steps and learning rate; budgets are matched within
2.3k-3.2k parameters (LoRA r=8 at W_q, W_v; adapters r=16 at the FFN; prefix 12 vectors per layer; MAM prefix 4 +
PA r=12).
Baselines in the same run: head only (linear probe on the frozen model, the simple baseline) and full fine-tuning.

    python plugins/peft/benchmarks/unified_peft_claim.py --quick --out unified_peft_claim.json

Top-level figures are held-out accuracies (means over seeds) and the claim differences
(``parallel_minus_sequential``, ``ffn_minus_attention``, ``scaled_minus_unscaled``, ``mam_minus_best_other``);
a difference above 0 reproduces that claim.
"""

from __future__ import annotations

import time
from typing import Any

from peft_common import (
    CLASSES,
    LR_FULL,
    LR_NEW,
    accuracy,
    fresh_head,
    make_split,
    pretrained_backbone,
    train,
    trainable,
)

from malot.benchmarking import benchmark_args, summarize, write_result

SPECS: dict[str, dict[str, Any]] = {
    "lora_attn": {"form": "lora", "r": 8},
    "prefix_attn": {"form": "prefix", "prefix_len": 12},
    "sequential_adapter_ffn": {"form": "adapter", "r": 16},
    "parallel_adapter_ffn_s1": {"form": "parallel_adapter", "r": 16, "scale": 1.0},
    "parallel_adapter_ffn_s4": {"form": "parallel_adapter", "r": 16, "scale": 4.0},
    "mam": {"form": "mam", "r": 12, "prefix_len": 4, "scale": 4.0},
}


def _run(seed: int, quick: bool, n_train: int) -> dict[str, float]:
    import torch
    from malot_peft.core.apply import PeftSpec, apply_peft

    pre_steps, steps = (150, 80) if quick else (600, 300)
    backbone = pretrained_backbone(seed, pre_steps)
    g = torch.Generator().manual_seed(seed + 1)
    train_set, test_set = make_split("least", n_train, g), make_split("least", 2048, g)
    classes = CLASSES["least"]
    out: dict[str, float] = {}

    head_only = fresh_head(backbone, classes, seed)
    train(head_only, trainable(head_only), train_set, steps=steps, lr=LR_NEW, seed=seed)
    out["head_only"] = accuracy(head_only, test_set)

    full = fresh_head(backbone, classes, seed)
    for p in full.parameters():
        p.requires_grad_(True)
    train(full, trainable(full), train_set, steps=steps, lr=LR_FULL, seed=seed)
    out["full_ft"] = accuracy(full, test_set)

    for name, spec in SPECS.items():
        model = fresh_head(backbone, classes, seed)
        torch.manual_seed(seed + 2)
        handle = apply_peft(model, PeftSpec(**spec))
        for p in model.head.parameters():  # the new task head trains with every method
            p.requires_grad_(True)
        params = trainable(handle.model)
        train(handle.model, params, train_set, steps=steps, lr=LR_NEW, seed=seed)
        out[name] = accuracy(handle.model, test_set)
        out[f"{name}_params"] = float(handle.closed_form)
    return out


def main() -> None:
    """Run the benchmark and write one JSON object."""
    args = benchmark_args(
        __doc__,
        default_out="unified_peft_claim.json",
        seeds=5,
        quick_seeds=2,
        extra=[(["--train-size"], {"type": int, "default": 512, "help": "labelled target examples"})],
    )
    start = time.perf_counter()
    runs = [_run(seed, args.quick, args.train_size) for seed in args.seed_list]
    stats = {k: summarize([r[k] for r in runs]) for k in runs[0]}

    def m(key: str) -> float:
        return stats[key]["mean"]

    def diffs(fn: Any) -> dict[str, float]:
        return summarize([fn(r) for r in runs])

    claims = {
        "parallel_minus_sequential": diffs(lambda r: r["parallel_adapter_ffn_s1"] - r["sequential_adapter_ffn"]),
        "ffn_minus_attention": diffs(
            lambda r: (
                max(r["parallel_adapter_ffn_s4"], r["sequential_adapter_ffn"]) - max(r["lora_attn"], r["prefix_attn"])
            )
        ),
        "scaled_minus_unscaled": diffs(lambda r: r["parallel_adapter_ffn_s4"] - r["parallel_adapter_ffn_s1"]),
        "mam_minus_best_other": diffs(lambda r: r["mam"] - max(r[k] for k in SPECS if k != "mam")),
    }
    figures: dict[str, float] = {f"{k}_acc": m(k) for k in ["head_only", "full_ft", *SPECS]}
    figures.update({k: v["mean"] for k, v in claims.items()})
    write_result(
        args.out,
        figures,
        details={
            "seeds": args.seed_list,
            "quick": args.quick,
            "per_figure": {k: v for k, v in stats.items()},
            "claims": claims,
            "reproduced": {k: v["mean"] > 0 for k, v in claims.items()},
            "trainable_params_excluding_head": {k: m(f"{k}_params") for k in SPECS},
            "runs": runs,
            "seconds": time.perf_counter() - start,
            "train_size": args.train_size,
            "setup": "TinyTransformer d=32 L=3 pre-trained on 'most'; "
            f"target 'least' from {args.train_size} examples; "
            f"lr new modules {LR_NEW}, full FT {LR_FULL}; same steps for all",
        },
    )


if __name__ == "__main__":
    main()
