"""ped_score on Hugging Face checkpoints: hidden-state features over a labelled theorem set, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from malot_select.ped import causal_lm_features, ped_score_tool

from malot.cli.app import main
from malot.tools import ToolRegistry

THEOREMS = [
    ("theorem a (x : Nat) : x + 0 = x", 1),
    ("theorem b (x y : Nat) : x + y = y + x", 1),
    ("theorem c (p : Prop) : p -> p", 1),
    ("theorem d (x : Nat) : x * 1 = x", 1),
    ("theorem e (n : Nat) : n ^ 2 >= 0 := hard", 0),
    ("theorem f (a b : Real) : a ^ 2 + b ^ 2 >= 2 * a * b := hard", 0),
    ("theorem g (n : Nat) : Prime n -> n >= 2 := hard", 0),
    ("theorem h (x : Real) : Real.sin x ^ 2 + Real.cos x ^ 2 = 1 := hard", 0),
]


def _tiny_llama(folder: Path, seed: int) -> str:
    """A random-weight two-layer Llama with a word-level tokenizer over the theorem texts (a test fixture)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = sorted({w for text, _ in THEOREMS for w in text.split()})
    vocab = {"[UNK]": 0, "[PAD]": 1, **{w: i + 2 for i, w in enumerate(words)}}
    core = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]", pad_token="[PAD]")
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
        pad_token_id=1,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.mark.slow
def test_checkpoints_are_scored_on_their_hidden_states(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    texts = tmp_path / "theorems.jsonl"
    texts.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in THEOREMS), encoding="utf-8")
    models = [_tiny_llama(tmp_path / f"m{seed}", seed) for seed in (0, 1)]
    features = causal_lm_features(models[0], [t for t, _ in THEOREMS])
    assert features.shape == (len(THEOREMS), 32) and np.all(np.isfinite(features))
    registry = ToolRegistry()
    registry.register(ped_score_tool)
    by_models = registry.run_sync(
        "ped_score", {"models": models, "texts": str(texts), "steps": 3}, isolation="inline"
    ).model_dump()
    np.save(tmp_path / "f0.npy", features)
    by_features = registry.run_sync(
        "ped_score",
        {"features": [str(tmp_path / "f0.npy")], "labels": [y for _, y in THEOREMS], "steps": 3},
        isolation="inline",
    ).model_dump()
    assert by_models["scores"][0]["ped"] == pytest.approx(by_features["scores"][0]["ped"])
    assert sorted(by_models["ranking"]) == sorted(models)
    # the same through the command line (the tool is heavy: it runs in a separate process)
    args = json.dumps({"features": [str(tmp_path / "f0.npy")], "labels": [y for _, y in THEOREMS], "steps": 3})
    assert main(["tools", "run", "ped_score", "--json", "--args", args]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["scores"][0]["ped"] == pytest.approx(by_features["scores"][0]["ped"])


def test_tools_list_shows_the_select_family(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tools", "list", "--family", "select", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    names = {t["name"] for t in listing["tools"]}
    assert names == {
        "ped_score",
        "select_ensemble",
        "design_prior",
        "next_training_task",
        "pretrain_feasibility",
        "invariance_score",
        "inductive_bias",
    }


def test_cli_bad_input_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["tools", "run", "next_training_task", "--args", '{"contexts": [0, 1], "slope": -1}'])
    assert code == 2
    err = capsys.readouterr().err
    assert "slope" in err and "Traceback" not in err
