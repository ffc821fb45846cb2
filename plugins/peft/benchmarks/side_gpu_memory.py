"""Peak GPU training memory of full fine-tuning, LoRA, adapters, LST, UniPT and SHERL (needs a CUDA GPU).

The memory claims of LST (69% less than full fine-tuning), UniPT and SHERL are about accelerator memory. This script
trains each method for 3 steps on a larger TinyTransformer on one CUDA device and reports
``torch.cuda.max_memory_allocated`` above the memory held just before training (model weights, side modules and
data in place; no optimizer yet) -- i.e. activations + gradients + optimizer state at their peak. Without a GPU it
writes ``null`` figures and says why.

    python plugins/peft/benchmarks/side_gpu_memory.py --quick --out side_gpu_memory.json

Top-level figures: ``<method>_peak_mib`` and ``<method>_ratio_vs_full_ft``.
"""

from __future__ import annotations

import time

import torch
from side_common import build
from torch import nn

from malot.benchmarking import benchmark_args, write_result

METHODS = ("full_ft", "lora", "adapter", "lst", "unipt", "sherl")


def _peak(method: str, quick: bool) -> float:
    from malot_peft.core.tiny import TinyTransformer

    torch.manual_seed(0)
    d, layers, heads, n, batch = (256, 4, 4, 128, 8) if quick else (1024, 12, 16, 512, 16)
    model = TinyTransformer(1000, d=d, layers=layers, heads=heads, ffn=4 * d, max_len=n, out_dim=4)
    for p in model.parameters():
        p.requires_grad_(False)
    model.head.requires_grad_(True)
    forward, params = build(method, model, 0)
    model.cuda()
    if isinstance(forward, nn.Module):
        forward.cuda()
    x = torch.randint(0, 1000, (batch, n), device="cuda")
    y = torch.randint(0, 4, (batch,), device="cuda")
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    opt = torch.optim.AdamW(params, lr=1e-4)
    for _ in range(3):
        loss = nn.functional.cross_entropy(forward(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.cuda.synchronize()
    peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    del opt, forward, params, model, x, y
    torch.cuda.empty_cache()
    return float(peak)


def main() -> None:
    """Run the measurement and write one JSON object."""
    args = benchmark_args(__doc__, default_out="side_gpu_memory.json", seeds=1, quick_seeds=1)
    if not torch.cuda.is_available():
        write_result(
            args.out, {f"{m}_peak_mib": None for m in METHODS}, details={"why_null": "no CUDA device on this machine"}
        )
        return
    start = time.perf_counter()
    peaks = {m: _peak(m, args.quick) for m in METHODS}
    figures: dict[str, float | None] = {f"{m}_peak_mib": v for m, v in peaks.items()}
    figures.update({f"{m}_ratio_vs_full_ft": peaks[m] / peaks["full_ft"] for m in METHODS if m != "full_ft"})
    write_result(
        args.out,
        figures,
        details={
            "device": torch.cuda.get_device_name(0),
            "torch": torch.__version__,
            "setup": "TinyTransformer "
            + ("d=256 L=4 n=128 batch 8" if args.quick else "d=1024 L=12 heads=16 n=512 batch 16")
            + "; side width d/4; LoRA r=8 (W_q, W_v); adapter r=16 (FFN); SHERL 1 late layer; fp32; 3 AdamW steps",
            "seconds": time.perf_counter() - start,
        },
    )


if __name__ == "__main__":
    main()
