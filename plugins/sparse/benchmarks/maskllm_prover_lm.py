"""MaskLLM on a (tiny) prover language model: learned 2:4 masks vs one-shot 2:4 masks, by held-out perplexity.

The pipeline use of ``learn_nm_mask``: the Llama-architecture model of ``malot.testing.tiny_models`` (hidden 64,
2 layers, its own BPE tokenizer) is first trained on its Lean-like corpus (``lean_like_corpus``), then all 14
linear layers of its blocks are made 2:4 sparse with frozen weights by magnitude, by SparseGPT's OBS saliency
(selection only), and by MaskLLM from the magnitude prior (the tool's defaults: lr 0.1, α = 3, τ 4 → 0.05). All
masks are scored by next-token loss on held-out lines of the corpus.

    python plugins/sparse/benchmarks/maskllm_prover_lm.py --quick --out maskllm_prover_lm.json

Top-level figures (means over seeds): ``dense_loss``, ``magnitude_loss``, ``sparsegpt_loss``, ``maskllm_loss`` and
``maskllm_vs_magnitude_loss_ratio`` (below 1: the learned masks keep more of the model).
"""

from __future__ import annotations

import itertools
import statistics
import tempfile
import time
from typing import Any

from malot.benchmarking import benchmark_args, summarize, write_result


def _run(seed: int, quick: bool, folder: str) -> dict[str, Any]:
    import torch
    from malot_sparse.core.causal_lm import lm_batches, lm_loss, load_lm
    from malot_sparse.maskllm import learn_nm_masks, nm_linear_layers, prior_masks, record_linear_inputs

    from malot.testing.tiny_models import lean_like_corpus

    torch.manual_seed(seed)
    model, tokenizer = load_lm(folder)
    texts = [t.replace("\n", " ") for t in itertools.islice(lean_like_corpus(seed), 400)]
    train, held_out = texts[:320], texts[320:]
    batches = lm_batches(tokenizer, train, 8, 64, seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for step in range(150 if quick else 400):
        optimizer.zero_grad()
        lm_loss(model, *batches(step)).backward()
        optimizer.step()
    model.eval()
    test = tokenizer(held_out, padding=True, truncation=True, max_length=64, return_tensors="pt")
    layers = nm_linear_layers(model, 4, include=["layers."])
    dense = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def score(masks: dict[str, torch.Tensor]) -> float:
        state = dict(dense)
        for name, mask in masks.items():
            state[f"{name}.weight"] = dense[f"{name}.weight"] * mask
        model.load_state_dict(state)
        with torch.no_grad():
            loss = float(lm_loss(model, test["input_ids"], test["attention_mask"]))
        model.load_state_dict(dense)
        return loss

    ids, mask = batches(-1)
    calibration = record_linear_inputs(model, layers, lambda: model(input_ids=ids, attention_mask=mask))
    learned = learn_nm_masks(
        model,
        lambda net, step: lm_loss(net, *batches(10_000 + step)),
        steps=60 if quick else 200,
        lr=0.1,
        include=["layers."],
        apply=False,
        seed=seed,
    )
    return {
        "dense_loss": score({}),
        "magnitude_loss": score(prior_masks(layers, 2, 4, "magnitude")),
        "sparsegpt_loss": score(prior_masks(layers, 2, 4, "sparsegpt", calibration)),
        "maskllm_loss": score(learned.masks),
        "maskllm_changed_from_prior": learned.changed_from_prior(),
        "layers": len(layers),
    }


def main() -> None:
    """Run the benchmark and write one JSON object."""
    args = benchmark_args(__doc__, default_out="maskllm_prover_lm.json", seeds=3, quick_seeds=1)
    from malot.testing.tiny_models import build_tiny_llama

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = str(build_tiny_llama(f"{tmp}/llama"))
        runs = [_run(seed, args.quick, folder) for seed in args.seed_list]
    keys = ["dense_loss", "magnitude_loss", "sparsegpt_loss", "maskllm_loss"]

    def mean(key: str) -> float:
        return statistics.mean(r[key] for r in runs)

    figures = {k: mean(k) for k in keys}
    figures["maskllm_vs_magnitude_loss_ratio"] = mean("maskllm_loss") / mean("magnitude_loss")
    write_result(
        args.out,
        figures,
        details={
            "quick": args.quick,
            "seeds": args.seed_list,
            "summary": {k: summarize([r[k] for r in runs]) for k in keys},
            "runs": runs,
            "seconds": time.perf_counter() - start,
        },
    )


if __name__ == "__main__":
    main()
