"""MaskLLM claim: learned 2:4 masks keep more of a frozen model's quality than one-shot 2:4 masks.

Synthetic set-up: inputs with feature scales spread over 1.5 decades, labels from a random teacher MLP (10 classes);
a 32-128-128-10 MLP is trained to fit them. Its three linear layers are then 2:4-sparsified with frozen weights by
(a) magnitude (largest |w| of every group of 4), (b) the SparseGPT/OBS saliency w²/[H⁻¹]²_jj from calibration
activations (selection only, no weight update, as MaskLLM uses it for its prior), (c) a random 2:4 mask,
(d) MaskLLM from the magnitude prior, (e) MaskLLM from the SparseGPT prior and (f) MaskLLM with uniform logits (no
prior). Learned masks train on the training set only; every mask is scored on held-out test data.

    python plugins/sparse/benchmarks/maskllm_claim.py --quick --out maskllm_claim.json

Top-level figures (means over seeds): test accuracy of the dense model and of every mask, and
``learned_vs_best_oneshot_loss_ratio`` (test loss of MaskLLM with the better prior / best one-shot mask; below 1
reproduces the claim). The settings (steps, lr, prior strength, temperatures) were fixed before the first run.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from malot.benchmarking import benchmark_args, summarize, write_result

DIM, HIDDEN, CLASSES = 32, 128, 10


def _data(seed: int, n: int) -> tuple[Any, Any, Any, Any]:
    import torch

    g = torch.Generator().manual_seed(seed)
    scales = torch.logspace(-1, 0.5, DIM)[torch.randperm(DIM, generator=g)]
    teacher_w1 = torch.randn(DIM, 64, generator=g) / scales.unsqueeze(1) / DIM**0.5
    teacher_w2 = torch.randn(64, CLASSES, generator=g)
    x = torch.randn(2 * n, DIM, generator=g) * scales
    y = (torch.tanh(x @ teacher_w1) @ teacher_w2).argmax(dim=1)
    return x[:n], y[:n], x[n:], y[n:]


def _run(seed: int, quick: bool) -> dict[str, float]:
    import torch
    import torch.nn.functional as F
    from malot_sparse.core.nm import candidate_masks, magnitude_nm_mask, mask_from_choice
    from malot_sparse.maskllm import learn_nm_masks, nm_linear_layers, prior_masks, record_linear_inputs

    torch.manual_seed(seed)
    x, y, x_test, y_test = _data(seed, 2048)
    model = torch.nn.Sequential(
        torch.nn.Linear(DIM, HIDDEN),
        torch.nn.ReLU(),
        torch.nn.Linear(HIDDEN, HIDDEN),
        torch.nn.ReLU(),
        torch.nn.Linear(HIDDEN, CLASSES),
    )
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(300 if quick else 600):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    dense = {k: v.detach().clone() for k, v in model.state_dict().items()}
    layers = nm_linear_layers(model, 4)

    def score(masks: dict[str, torch.Tensor]) -> tuple[float, float]:
        state = dict(dense)
        for name, mask in masks.items():
            state[f"{name}.weight"] = dense[f"{name}.weight"] * mask
        with torch.no_grad():
            logits = torch.func.functional_call(model, state, (x_test,))
        return float(F.cross_entropy(logits, y_test)), float((logits.argmax(1) == y_test).float().mean())

    calibration = record_linear_inputs(model, layers, lambda: model(x[:512]))
    oneshot = {
        "magnitude": prior_masks(layers, 2, 4, "magnitude"),
        "sparsegpt": prior_masks(layers, 2, 4, "sparsegpt", calibration),
    }
    g = torch.Generator().manual_seed(seed + 1000)
    cands = candidate_masks(2, 4)
    oneshot["random"] = {
        name: mask_from_choice(
            torch.randint(len(cands), (layer.weight.numel() // 4,), generator=g), cands, tuple(layer.weight.shape)
        )
        for name, layer in layers.items()
    }
    steps = 150 if quick else 400
    batch_gen = torch.Generator().manual_seed(seed + 7)

    def loss_fn(net: torch.nn.Module, step: int) -> torch.Tensor:
        pick = torch.randint(len(x), (256,), generator=batch_gen)
        return F.cross_entropy(net(x[pick]), y[pick])

    learned: dict[str, dict[str, torch.Tensor]] = {}
    for prior, strength in (("magnitude", 3.0), ("sparsegpt", 3.0), ("none", 0.0)):
        result = learn_nm_masks(
            model,
            loss_fn,
            steps=steps,
            lr=0.1,
            prior=prior,  # type: ignore[arg-type]
            prior_strength=strength,
            calibration=calibration,
            apply=False,
            seed=seed,
        )
        learned[f"maskllm_{prior}"] = result.masks
    assert all(torch.equal(v, dense[k]) for k, v in model.state_dict().items())  # frozen weights
    dense_loss, dense_acc = score({})
    out: dict[str, float] = {"dense_loss": dense_loss, "dense_acc": dense_acc}
    for name, masks in {**oneshot, **learned}.items():
        out[f"{name}_loss"], out[f"{name}_acc"] = score(masks)
    out["magnitude_mask_agreement_of_maskllm"] = float(
        sum(int((learned["maskllm_magnitude"][k] == magnitude_nm_mask(layers[k].weight, 2, 4)).sum()) for k in layers)
        / sum(int(v.weight.numel()) for v in layers.values())
    )
    return out


def main() -> None:
    """Run the benchmark and write one JSON object."""
    args = benchmark_args(__doc__, default_out="maskllm_claim.json", seeds=5, quick_seeds=2)
    start = time.perf_counter()
    runs = [_run(seed, args.quick) for seed in args.seed_list]
    keys = list(runs[0])
    summary = {k: summarize([r[k] for r in runs]) for k in keys}

    def mean(key: str) -> float:
        return statistics.mean(r[key] for r in runs)

    best_oneshot = min(mean("magnitude_loss"), mean("sparsegpt_loss"))
    best_learned = min(mean("maskllm_magnitude_loss"), mean("maskllm_sparsegpt_loss"))
    figures = {
        "dense_acc": mean("dense_acc"),
        "magnitude_acc": mean("magnitude_acc"),
        "sparsegpt_acc": mean("sparsegpt_acc"),
        "random_acc": mean("random_acc"),
        "maskllm_magnitude_acc": mean("maskllm_magnitude_acc"),
        "maskllm_sparsegpt_acc": mean("maskllm_sparsegpt_acc"),
        "maskllm_no_prior_acc": mean("maskllm_none_acc"),
        "learned_vs_best_oneshot_loss_ratio": best_learned / best_oneshot,
    }
    write_result(
        args.out,
        figures,
        details={
            "quick": args.quick,
            "seeds": args.seed_list,
            "summary": summary,
            "runs": runs,
            "seconds": time.perf_counter() - start,
        },
    )


if __name__ == "__main__":
    main()
