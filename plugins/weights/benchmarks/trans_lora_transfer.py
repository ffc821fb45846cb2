"""Trans-LoRA claim: a LoRA moved to a new base model by distillation on discriminator-filtered synthetic data
recovers the source LoRA's task accuracy on the new base without the task's training data; filtering helps.

Synthetic task over the letters a-h: the prompt is 3 letters, the answer is ``yes`` when the first letter is in
a-d, else ``no``. Two bases (widths 32 and 48, different seeds, initial weight std 0.2) are pre-trained on generic
text: half the sentences are unlabelled 3-letter prompts (in-domain text, never with an answer), half are noise of
1-5 words over the whole vocabulary, so a base prompted with real prompts writes a mix of task-like and degenerate
prompts. A LoRA is trained on the old base with 96 labelled examples (the teacher). ``trans_lora`` then sees 32
unlabelled real prompts: the discriminator (old base + LoRA + head) learns real vs 128 old-base samples, the new
base writes candidates and the first 64 judged real are distilled on. The ablation ``unfiltered`` distils on the
first 64 candidates (same prompt count, same student steps). Several transfer seeds (2 quick, 4 full) over the
same bases and teacher; accuracies are means. Accuracy is measured on 128 held-out prompts (greedy choice between
the two answer tokens).

    python plugins/weights/benchmarks/trans_lora_transfer.py --quick --out trans_lora_transfer.json

Top-level figures: ``transferred_accuracy``, ``teacher_accuracy`` (old base + LoRA), ``new_base_accuracy`` (no
LoRA), ``accuracy_ratio_vs_teacher`` (transferred / teacher; near 1 reproduces the claim),
``unfiltered_accuracy`` (the same transfer without the discriminator filter: the paper's ablation).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from malot.benchmarking import benchmark_args, write_result

LETTERS = list("abcdefgh")
DOMAIN_SHARE = 0.5  # share of pre-training sentences that are unlabelled task prompts
N_REAL = 32  # unlabelled real task prompts the transfer sees
N_KEPT = 64  # synthetic prompts distilled on (filtered and unfiltered alike)
LR = 3e-3  # discriminator and student learning rate


def _prompts(n: int, seed: int) -> list[str]:
    import torch

    g = torch.Generator().manual_seed(seed)
    return [" ".join(LETTERS[int(i)] for i in torch.randint(8, (3,), generator=g)) for _ in range(n)]


def _task_format(prompt: str) -> bool:
    """Whether a prompt looks like the task's: exactly three letters a-h."""
    words = prompt.split()
    return len(words) == 3 and all(w in LETTERS for w in words)


def _answer(prompt: str) -> str:
    return "yes" if prompt[0] in "abcd" else "no"


def _pretrain(model: Any, tokenizer: Any, steps: int, seed: int) -> None:
    """Generic pre-training: random text over the whole vocabulary (the base knows every word, not the task)."""
    import torch
    from malot_weights.causal_lm import batch_token_ids, causal_lm_loss

    vocab = [*LETTERS, "yes", "no"]
    g = torch.Generator().manual_seed(seed)

    def sentence() -> str:
        # unlabelled in-domain text (a 3-letter prompt, no answer) or noise of 1-5 words over the whole vocabulary
        if float(torch.rand((), generator=g)) < DOMAIN_SHARE:
            return " ".join(LETTERS[int(i)] for i in torch.randint(8, (3,), generator=g))
        length = int(torch.randint(1, 6, (1,), generator=g))
        return " ".join(vocab[int(i)] for i in torch.randint(len(vocab), (length,), generator=g))

    sentences = [sentence() for _ in range(2048)]
    # documents: "<s>" then sentences separated by "</s>", as the task format uses them
    texts = ["<s> " + " </s> ".join(sentences[4 * k : 4 * k + 4]) + " </s>" for k in range(512)]
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(steps):
        pick = torch.randint(len(texts), (32,), generator=g).tolist()
        ids, mask = batch_token_ids(tokenizer, [texts[i] for i in pick], 32)
        loss = causal_lm_loss(model, ids, mask)
        opt.zero_grad()
        loss.backward()
        opt.step()


def _accuracy(model: Any, tokenizer: Any, prompts: list[str]) -> float:
    import torch
    from malot_weights.trans_lora import _pair_ids

    yes, no = tokenizer.convert_tokens_to_ids("yes"), tokenizer.convert_tokens_to_ids("no")
    correct = 0
    model.eval()
    with torch.no_grad():
        for prompt in prompts:
            ids, start = _pair_ids(tokenizer, prompt, [])
            logits = model(input_ids=torch.tensor([ids[:start]])).logits[0, -1]
            guess = "yes" if logits[yes] > logits[no] else "no"
            correct += guess == _answer(prompt)
    return correct / len(prompts)


TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def _train_teacher_lora(model: Any, tokenizer: Any, prompts: list[str], steps: int) -> dict[str, Any]:
    import torch
    from malot_weights.trans_lora import _pair_ids, add_lora, lora_tensors

    wrappers = add_lora(model, TARGETS, rank=4, seed=0)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=3e-3)
    model.train()
    for step in range(steps):
        total = torch.zeros(())
        for j in range(8):
            prompt = prompts[(step * 8 + j) % len(prompts)]
            ids, start = _pair_ids(tokenizer, prompt, _answer(prompt))
            logits = model(input_ids=torch.tensor([ids])).logits[0]
            total = total + torch.nn.functional.cross_entropy(
                logits[start - 1 : len(ids) - 1], torch.tensor(ids[start:])
            )
        opt.zero_grad()
        (total / 8).backward()
        opt.step()
    return lora_tensors(wrappers)


def main() -> None:
    """Run the benchmark and write one JSON object."""
    args = benchmark_args(__doc__, default_out="trans_lora_transfer.json", seeds=4, quick_seeds=2)
    from malot_weights.causal_lm import build_tiny_lm_folder, load_causal_lm, load_tokenizer
    from malot_weights.trans_lora import TransLoraConfig, trans_lora

    start = time.perf_counter()
    words = [*LETTERS, "yes", "no"]
    test = _prompts(128, 77)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        old_dir = build_tiny_lm_folder(
            root / "old", words, hidden_size=32, layers=2, heads=2, seed=0, initializer_range=0.2
        )
        new_dir = build_tiny_lm_folder(
            root / "new", words, hidden_size=48, layers=2, heads=4, seed=1, initializer_range=0.2
        )
        tok = load_tokenizer(old_dir)
        for folder, seed in ((old_dir, 0), (new_dir, 1)):
            model = load_causal_lm(folder)
            _pretrain(model, tok, 150 if args.quick else 400, seed)
            model.save_pretrained(str(folder))
        teacher = load_causal_lm(old_dir)
        lora = _train_teacher_lora(teacher, tok, _prompts(96, 5), 150 if args.quick else 400)
        teacher_accuracy = _accuracy(teacher, tok, test)
        new_base_accuracy = _accuracy(load_causal_lm(new_dir), tok, test)
        real = _prompts(N_REAL, 11)
        seeds = args.seed_list
        runs: dict[str, list[dict[str, Any]]] = {"filtered": [], "unfiltered": []}
        for seed in seeds:
            for name, use_filter in (("filtered", True), ("unfiltered", False)):
                # same distillation budget for both: N_KEPT prompts, the same student steps; unfiltered simply
                # takes the first N_KEPT candidates the new base writes, filtered keeps the first N_KEPT that pass
                config = TransLoraConfig(
                    rank=4,
                    targets=TARGETS,
                    n_discriminator=128,
                    n_candidates=64 if use_filter else N_KEPT,
                    n_kept=N_KEPT,
                    max_rounds=4 if args.quick else 8,
                    min_kept=8,
                    max_new_tokens=6,
                    discriminator_steps=100,
                    student_steps=250 if args.quick else 800,
                    lr=LR,
                    filter=use_filter,
                    seed=seed,
                )
                student = load_causal_lm(new_dir)
                _, report = trans_lora(
                    load_causal_lm(old_dir),
                    lora,
                    tok,
                    student,
                    tok,
                    real,
                    config,
                    discriminator_base=load_causal_lm(old_dir) if use_filter else None,
                )
                kept = report.kept_prompts
                runs[name].append(
                    {
                        "seed": seed,
                        "accuracy": _accuracy(student, tok, test),
                        "candidates": report.candidates,
                        "kept": report.kept,
                        "kept_task_format_share": sum(_task_format(p) for p in kept) / max(len(kept), 1),
                        "kept_first_letter_a_to_d_share": sum(p[:1] in "abcd" for p in kept) / max(len(kept), 1),
                        "discriminator_accuracy": report.discriminator_accuracy,
                        "example_kept": kept[:8],
                        "student_loss_first": report.student_losses[0],
                        "student_loss_last": report.student_losses[-1],
                    }
                )

    def mean_accuracy(name: str) -> float:
        return sum(r["accuracy"] for r in runs[name]) / len(runs[name])

    transferred = mean_accuracy("filtered")
    write_result(
        args.out,
        {
            "transferred_accuracy": transferred,
            "teacher_accuracy": teacher_accuracy,
            "new_base_accuracy": new_base_accuracy,
            "accuracy_ratio_vs_teacher": transferred / max(teacher_accuracy, 1e-9),
            "unfiltered_accuracy": mean_accuracy("unfiltered"),
        },
        details={
            "quick": args.quick,
            "seeds": seeds,
            "n_real_prompts": N_REAL,
            "domain_share_in_pretraining": DOMAIN_SHARE,
            "runs": runs,
            "seconds": time.perf_counter() - start,
        },
    )


if __name__ == "__main__":
    main()
