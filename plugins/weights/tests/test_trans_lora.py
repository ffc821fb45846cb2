"""Trans-LoRA: LoRA layers and files, synthetic prompts, the discriminator filter and distillation to a new base."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from malot_weights.causal_lm import build_tiny_lm_folder, load_causal_lm, load_tokenizer  # noqa: E402
from malot_weights.trans_lora import (  # noqa: E402
    TransLoraConfig,
    TransLoraInput,
    add_lora,
    generate_synthetic_prompts,
    load_lora,
    lora_tensors,
    trans_lora,
    trans_lora_tool,
)

WORDS = ["a", "b", "c", "d", "e", "f", "g", "h"]
PROMPTS = ["a b c", "b c d", "c d e", "d e f", "e f g", "f g h", "a c e", "b d f"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("trans_lora")
    old = build_tiny_lm_folder(root / "old", WORDS, hidden_size=16, layers=1, seed=0)
    new = build_tiny_lm_folder(root / "new", WORDS, hidden_size=24, layers=1, seed=1)
    return old, new


def _random_lora(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    wrappers = add_lora(model, ["q_proj", "v_proj"], rank=2, seed=5)
    with torch.no_grad():
        for w in wrappers.values():
            w.lora_b.copy_(torch.randn(w.lora_b.shape, generator=torch.Generator().manual_seed(7)))
    return lora_tensors(wrappers)


def test_lora_starts_as_identity_and_its_file_merges_and_reloads_exactly(folders: tuple[Path, Path]) -> None:
    from malot_weights.core.lora import merge_lora

    old, _ = folders
    ids = torch.tensor([[2, 4, 5, 6, 7]])
    plain = load_causal_lm(old).eval()
    with torch.no_grad():
        reference = plain(input_ids=ids).logits
    wrapped = load_causal_lm(old).eval()
    add_lora(wrapped, ["q_proj", "v_proj"], rank=2)
    with torch.no_grad():
        assert torch.equal(wrapped(input_ids=ids).logits, reference)
    adapted = load_causal_lm(old).eval()
    tensors = _random_lora(adapted)
    with torch.no_grad():
        expected = adapted(input_ids=ids).logits
    assert not torch.allclose(expected, reference)
    merged = load_causal_lm(old).eval()
    merged.load_state_dict(merge_lora(merged.state_dict(), tensors))
    reloaded = load_causal_lm(old).eval()
    load_lora(reloaded, tensors)
    with torch.no_grad():
        assert torch.allclose(merged(input_ids=ids).logits, expected, atol=1e-5)
        assert torch.allclose(reloaded(input_ids=ids).logits, expected, atol=1e-6)


def test_synthetic_prompts_are_seeded(folders: tuple[Path, Path]) -> None:
    old, _ = folders
    model, tok = load_causal_lm(old), load_tokenizer(old)
    first = generate_synthetic_prompts(model, tok, PROMPTS, 5, max_new_tokens=6, seed=1)
    again = generate_synthetic_prompts(model, tok, PROMPTS, 5, max_new_tokens=6, seed=1)
    assert first == again and len(first) == 5 and all(set(p.split()) <= set(WORDS) for p in first)


def test_transfer_keeps_only_realistic_prompts_and_distils_into_the_new_base(folders: tuple[Path, Path]) -> None:
    from malot_weights.core.lora import lora_targets

    old, new = folders
    teacher_lora = _random_lora(load_causal_lm(old))
    config = TransLoraConfig(
        rank=2,
        n_discriminator=8,
        n_candidates=12,
        n_kept=4,
        max_rounds=2,
        min_kept=3,
        max_new_tokens=5,
        discriminator_steps=15,
        student_steps=24,
        lr=0.02,
    )
    new_model = load_causal_lm(new)
    adapter, report = trans_lora(
        load_causal_lm(old),
        teacher_lora,
        load_tokenizer(old),
        new_model,
        load_tokenizer(new),
        PROMPTS,
        config,
        discriminator_base=load_causal_lm(old),
    )
    assert report.candidates in (12, 24) and 3 <= report.kept <= 4
    assert len(report.kept_scores) == report.kept
    # accepted prompts pass the filter; only the fallback (too few pass) keeps the best-scored min_kept
    assert all(score >= config.threshold for score in report.kept_scores) or report.kept == config.min_kept
    assert report.discriminator_accuracy is not None and report.kd_mode == "logits"
    pairs = lora_targets(adapter, [n for n, _ in load_causal_lm(new).named_parameters()])
    assert set(pairs) == {"model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.v_proj.weight"}
    assert pairs["model.layers.0.self_attn.q_proj.weight"].b.shape == (24, 2)
    n = report.kept
    losses = report.student_losses
    assert sum(losses[-n:]) < sum(losses[:n])  # the last pass over the kept prompts beats the first


def test_trans_lora_tool(folders: tuple[Path, Path], tmp_path: Path) -> None:
    from malot_weights.tool_io import save_weights

    old, new = folders
    lora = save_weights(_random_lora(load_causal_lm(old)), tmp_path / "lora.safetensors")
    data = tmp_path / "task.jsonl"
    data.write_text("".join(f'{{"prompt": "{p}", "completion": "x"}}\n' for p in PROMPTS))
    result = trans_lora_tool(
        TransLoraInput(
            old_base=str(old),
            lora=str(lora),
            new_base=str(new),
            data=str(data),
            out=str(tmp_path / "new_lora.safetensors"),
            rank=2,
            n_candidates=6,
            n_kept=2,
            max_rounds=1,
            n_discriminator=6,
            discriminator_steps=5,
            student_steps=6,
            max_new_tokens=4,
        )
    )
    assert Path(result.out).is_file() and result.candidates == 6 and result.kept >= 1
    model = load_causal_lm(new)
    from malot_weights.tool_io import load_weights

    load_lora(model, load_weights(result.out))  # the adapter attaches to the new base
