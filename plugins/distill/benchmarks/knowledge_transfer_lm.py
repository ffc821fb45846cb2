"""Fantastic Gains on causal LMs (the pipeline use: moving knowledge between two prover checkpoints).

Two tiny Llama checkpoints (``malot.testing.tiny_models``: 2 layers, hidden 64, one shared BPE tokenizer) are
trained from different random inits on different text: the *student* on Lean-like theorem lines (domain A), the
*teacher* on Python-like ``def`` lines (domain B), with a few A lines mixed in so it knows A only weakly. Transfer
runs on a mix of A and B texts. Compared for the same steps from the same student: ``kl_dp`` (this tool:
per-token partition by the true next token's probability), ``kd`` (plain KL to the teacher at every token), and no
transfer. Figures are mean next-token negative log-likelihoods (nats/token) on held-out A and B lines.

    python plugins/distill/benchmarks/knowledge_transfer_lm.py --quick --out kt_lm.json

Figures: ``gain_b_kl_dp`` / ``gain_b_kd`` (NLL on B before − after: knowledge gained), ``forget_a_kl_dp`` /
``forget_a_kd`` (NLL on A after − before: knowledge lost), the raw NLLs. Reproduced when KL+DP gains on B
(``gain_b_kl_dp > 0``) and forgets less on A than plain KD (``forget_a_kl_dp < forget_a_kd``).
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

from malot.benchmarking import benchmark_args, summarize, write_result


def _texts(seed: int) -> tuple[list[str], list[str]]:
    from malot.testing.tiny_models import lean_like_corpus

    lean, code = [], []
    for text in lean_like_corpus(seed):
        if text.startswith("theorem t"):
            lean.append(text.splitlines()[0])
        elif text.startswith("def f"):
            code.append(" ".join(text.split()))
    return lean, code


def run(seed: int, quick: bool, folder: Path) -> dict[str, float]:
    """One seed: train student (A) and teacher (B + a little A), then both transfers."""
    import torch
    from malot_distill.core.causal_lm import next_token_batch
    from malot_distill.core.kd import soft_kl
    from malot_distill.core.train import fit
    from malot_distill.knowledge_transfer import lm_logits, transfer
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    config = AutoModelForCausalLM.from_pretrained(str(folder)).config
    lean, code = _texts(seed)
    gen = torch.Generator().manual_seed(seed)
    a_train, a_test, b_train, b_test = lean[:1200], lean[1200:1400], code[:1200], code[1200:1400]
    steps = 150 if quick else 400
    batch = 16

    def sample(pool: list[str]) -> list[str]:
        return [pool[i] for i in torch.randint(len(pool), (batch,), generator=gen).tolist()]

    def encode(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask, targets = next_token_batch(tok, texts, 48)
        return torch.stack([ids, mask]), targets

    def lm_loss(model: Any, texts: list[str]) -> torch.Tensor:
        inputs, targets = encode(texts)
        logits = lm_logits(model, inputs)
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

    def nll(model: Any, texts: list[str]) -> float:
        with torch.no_grad():
            return float(lm_loss(model, texts))

    def train(model: Any, pools: list[list[str]], weights: list[float]) -> None:
        model.train()

        def loss(step: int) -> torch.Tensor:
            pick = int(torch.multinomial(torch.tensor(weights), 1, generator=gen))
            return lm_loss(model, sample(pools[pick]))

        fit(model.parameters(), loss, steps=steps, lr=3e-3)
        model.eval()

    torch.manual_seed(seed)
    student = AutoModelForCausalLM.from_config(config)
    torch.manual_seed(seed + 100)
    teacher = AutoModelForCausalLM.from_config(config)
    train(student, [a_train], [1.0])
    train(teacher, [b_train, a_train], [0.9, 0.1])
    before_a, before_b = nll(student, a_test), nll(student, b_test)
    out: dict[str, float] = {
        "student_nll_a": before_a,
        "student_nll_b": before_b,
        "teacher_nll_a": nll(teacher, a_test),
        "teacher_nll_b": nll(teacher, b_test),
    }
    t_steps = 100 if quick else 250
    mixed = a_train + b_train
    batches = [encode(sample(mixed)) for _ in range(t_steps)]

    moved = copy.deepcopy(student)
    transfer(
        moved,
        teacher,
        lambda s: (batches[s][0], batches[s][1], batches[s][1] != -100),
        lm_logits,
        steps=t_steps,
        lr=1e-3,
    )
    plain = copy.deepcopy(student)
    plain.train()

    def kd(step: int) -> torch.Tensor:
        inputs, targets = batches[step]
        valid = (targets != -100).float()
        with torch.no_grad():
            t = lm_logits(teacher, inputs)
        per = soft_kl(lm_logits(plain, inputs), t)
        return (per * valid).sum() / valid.sum()

    fit(plain.parameters(), kd, steps=t_steps, lr=1e-3)
    plain.eval()
    for name, model in (("kl_dp", moved), ("kd", plain)):
        out[f"{name}_nll_a"], out[f"{name}_nll_b"] = nll(model, a_test), nll(model, b_test)
        out[f"gain_b_{name}"] = before_b - out[f"{name}_nll_b"]
        out[f"forget_a_{name}"] = out[f"{name}_nll_a"] - before_a
    return out


def main() -> None:
    """Build the shared tokenizer once, run the seeds, write the JSON result."""
    args = benchmark_args(
        __doc__, default_out="plugins/distill/benchmarks/results/knowledge_transfer_lm.json", seeds=3, quick_seeds=1
    )
    from malot.testing.tiny_models import build_tiny_llama

    with tempfile.TemporaryDirectory() as tmp:
        folder = build_tiny_llama(Path(tmp) / "tiny", vocab_size=512, seed=0)
        runs = [run(seed, args.quick, folder) for seed in args.seed_list]
    stats: dict[str, Any] = {k: summarize([r[k] for r in runs]) for k in runs[0]}
    figures = {k: stats[k]["mean"] for k in runs[0]}
    reproduced = figures["gain_b_kl_dp"] > 0 and figures["forget_a_kl_dp"] < figures["forget_a_kd"]
    details = {"stats": stats, "runs": runs, "quick": args.quick, "reproduced": reproduced}
    write_result(args.out, figures, details=details)


if __name__ == "__main__":
    main()
