"""Shared runner of the memory-efficient transfer benchmarks (LST, UniPT, SHERL); not a benchmark itself.

Accuracy: a TinyTransformer pre-trained on ``most`` is adapted to ``least`` from 512 sequences (``--train-size``;
``peft_common.py``);
every method trains a new head plus its own parameters for the same steps. Memory, two ways:

* *accounted*: on one batch of 64, the bytes autograd saves for backward (parameters excluded) plus gradients and
  two Adam moments of the trainable parameters (:func:`malot_peft.core.side.training_memory_bytes`);
* *measured*: the peak resident memory of a fresh process during 3 training steps of a larger model (d=256, 6
  layers, 128 tokens, batch 32), above its resident memory just before training (Linux ``VmHWM`` after resetting it
  through ``/proc/self/clear_refs``). Memory returned to the allocator is not returned to the OS, so this is the
  high-water mark of the process, what a user's machine must have.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from peft_common import CLASSES, LR_FULL, LR_NEW, accuracy, count, fresh_head, make_split, pretrained_backbone, train
from torch import nn

Forward = Callable[[torch.Tensor], torch.Tensor]
METHODS = ("head_only", "full_ft", "lora", "adapter", "lst", "unipt", "sherl", "sherl_early_only")


def build(
    method: str, model: nn.Module, seed: int
) -> tuple[Callable[[torch.Tensor], torch.Tensor], list[nn.Parameter]]:
    """The forward function and the trainable parameters of ``method`` around ``model`` (whose head is new)."""
    from malot_peft.core.apply import PeftSpec, apply_peft
    from malot_peft.core.backbone import layered
    from malot_peft.ladder import ladder_side_network
    from malot_peft.sherl import sherl_network
    from malot_peft.unipt import unipt_network

    torch.manual_seed(seed + 3)
    head = list(model.head.parameters())  # type: ignore[union-attr]
    forward: Forward
    own: list[nn.Parameter]
    if method == "head_only":
        forward, own = model, []
    elif method == "full_ft":
        forward, own = model, [p for n, p in model.named_parameters() if not n.startswith("head.")]
    elif method in ("lora", "adapter"):
        spec = PeftSpec(form="lora", r=8) if method == "lora" else PeftSpec(form="adapter", r=16)
        handle = apply_peft(model, spec)
        forward, own = handle.model, list(handle.trainable.values())
    else:
        backbone = layered(model)
        side: nn.Module
        if method == "lst":
            side = ladder_side_network(backbone, reduction=4)
        elif method == "unipt":
            side = unipt_network(backbone, reduction=4)
        elif method == "sherl":
            side = sherl_network(backbone, late_layers=1, reduction=4)
        elif method == "sherl_early_only":
            side = sherl_network(backbone, late_layers=0, reduction=4)
        else:
            raise ValueError(method)
        forward, own = side, [p for p in side.parameters() if p.requires_grad]
    for p in [*own, *head]:
        p.requires_grad_(True)
    return forward, [*own, *head]


def run_accuracy(methods: tuple[str, ...], seed: int, quick: bool, n_train: int = 512) -> dict[str, float]:
    """Held-out accuracy, trainable parameters and accounted training memory of each method, one seed."""
    from malot_peft.core.side import training_memory_bytes

    pre_steps, steps = (150, 80) if quick else (600, 300)
    backbone = pretrained_backbone(seed, pre_steps)
    g = torch.Generator().manual_seed(seed + 1)
    train_set, test_set = make_split("least", n_train, g), make_split("least", 2048, g)
    probe = make_split("least", 64, g)
    out: dict[str, float] = {}
    for method in methods:
        model = fresh_head(backbone, CLASSES["least"], seed)
        forward, params = build(method, model, seed)
        memory = training_memory_bytes(lambda f=forward: nn.functional.cross_entropy(f(probe.x), probe.y), params)
        lr = LR_FULL if method == "full_ft" else LR_NEW
        train(forward, params, train_set, steps=steps, lr=lr, seed=seed)
        out[f"{method}_acc"] = accuracy(forward, test_set)
        out[f"{method}_params"] = float(count(params))
        out[f"{method}_memory_bytes"] = float(memory["total"])
        out[f"{method}_activation_bytes"] = float(memory["activations"])
    return out


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _peak_child(method: str, quick: bool, queue: Any) -> None:
    torch.set_num_threads(1)
    from malot_peft.core.tiny import TinyTransformer

    torch.manual_seed(0)
    d, layers, n, batch = (128, 4, 64, 16) if quick else (256, 6, 128, 32)
    model = TinyTransformer(64, d=d, layers=layers, heads=4, ffn=4 * d, max_len=n, out_dim=4)
    for p in model.parameters():
        p.requires_grad_(False)
    model.head.requires_grad_(True)
    forward, params = build(method, model, 0)
    x = torch.randint(0, 64, (batch, n))
    y = torch.randint(0, 4, (batch,))
    opt = torch.optim.AdamW(params, lr=1e-4)
    with torch.no_grad():
        forward(x)
    base = _status_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark to the current RSS
    for _ in range(3):
        loss = nn.functional.cross_entropy(forward(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    queue.put((_status_kb("VmHWM") - base) / 1024)


def peak_rss_mb(method: str, quick: bool) -> float | None:
    """Measured peak resident memory (MiB) of 3 training steps of ``method``, in a fresh process (Linux only)."""
    if not Path("/proc/self/clear_refs").exists():
        return None
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_peak_child, args=(method, quick, queue))
    proc.start()
    value = queue.get(timeout=600)
    proc.join()
    return float(value)


def run_benchmark(
    doc: str | None,
    name: str,
    methods: tuple[str, ...],
    rss_methods: tuple[str, ...],
    claims: dict[str, Callable[[dict[str, float]], float]],
    headline: tuple[str, ...],
) -> None:
    """Parse the command line, run every seed, measure peak RSS once per method, write one JSON object.

    ``claims`` maps a figure name to a function of one seed's results (above 0 reproduces); ``headline`` names
    the per-method accuracy and memory figures to put at the top level.
    """
    import time

    from malot.benchmarking import benchmark_args, summarize, write_result

    args = benchmark_args(
        doc,
        default_out=f"{name}.json",
        seeds=5,
        quick_seeds=2,
        extra=[(["--train-size"], {"type": int, "default": 512, "help": "labelled target examples"})],
    )
    start = time.perf_counter()
    runs = [run_accuracy(methods, seed, args.quick, args.train_size) for seed in args.seed_list]
    stats = {k: summarize([r[k] for r in runs]) for k in runs[0]}
    claim_stats = {k: summarize([fn(r) for r in runs]) for k, fn in claims.items()}
    rss = {m: peak_rss_mb(m, args.quick) for m in rss_methods}
    figures: dict[str, float | None] = {}
    for method in headline:
        figures[f"{method}_acc"] = stats[f"{method}_acc"]["mean"]
    for method in headline:
        if method != "full_ft":
            figures[f"{method}_memory_ratio_vs_full_ft"] = (
                stats[f"{method}_memory_bytes"]["mean"] / stats["full_ft_memory_bytes"]["mean"]
            )
    figures.update({k: v["mean"] for k, v in claim_stats.items()})
    for method, value in rss.items():
        figures[f"{method}_peak_rss_mib"] = value
    write_result(
        args.out,
        figures,
        details={
            "seeds": args.seed_list,
            "quick": args.quick,
            "per_figure": stats,
            "claims": claim_stats,
            "reproduced": {k: v["mean"] > 0 for k, v in claim_stats.items()},
            "peak_rss_setup": "fresh process, 3 training steps, "
            + ("d=128 L=4 n=64 batch 16" if args.quick else "d=256 L=6 n=128 batch 32"),
            "runs": runs,
            "seconds": time.perf_counter() - start,
            "train_size": args.train_size,
            "setup": "TinyTransformer d=32 L=3 pre-trained on 'most'; "
            f"target 'least' from {args.train_size} examples; "
            f"lr new modules {LR_NEW}, full FT {LR_FULL}; side width d/4; same steps for all",
        },
    )
