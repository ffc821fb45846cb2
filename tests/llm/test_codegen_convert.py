"""CodeGen -> GPT-J conversion: exact logits on tiny random models, the block count, bad input, and the vLLM cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from malot.cli.app import main
from malot.config import LLMSettings, Settings
from malot.errors import ConfigError
from malot.llm.convert.cache import cache_key, codegen_cache_root, prepare_vllm_model
from malot.llm.convert.codegen import MANIFEST_NAME, convert_codegen_to_gptj, detect_mp_num, split_qkv
from malot.llm.convert.codegen_check import repack_qkv
from malot.llm.doctor import checks

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def build_codegen(
    folder: Path,
    tokenizer_from: Path,
    *,
    n_head: int = 4,
    n_embd: int = 64,
    rotary_dim: int | None = 8,
    tie: bool = False,
    seed: int = 0,
    n_layer: int = 2,
) -> Any:
    """Save a seeded random transformers CodeGen model with the tiny tokenizer; return the loaded model."""
    import transformers as tf

    vocab = json.loads((tokenizer_from / "config.json").read_text(encoding="utf-8"))["vocab_size"]
    config = tf.CodeGenConfig(
        vocab_size=vocab,
        n_positions=256,
        n_ctx=256,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        rotary_dim=rotary_dim,
        tie_word_embeddings=tie,
        bos_token_id=0,
        eos_token_id=0,
    )
    torch.manual_seed(seed)
    model = tf.CodeGenForCausalLM(config).eval()
    with torch.no_grad():  # a wider spread of logits, so that layout mistakes show
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.3)
        model.lm_head.bias.normal_(0.0, 0.3)
    model.save_pretrained(folder)
    for name in TOKENIZER_FILES:
        shutil.copy(tokenizer_from / name, folder / name)
    return model


def gptj_logits(folder: Path, ids: torch.Tensor) -> torch.Tensor:
    import transformers as tf

    model = tf.GPTJForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    with torch.no_grad():
        logits: torch.Tensor = model(input_ids=ids).logits
    return logits


@pytest.mark.parametrize(
    ("n_head", "n_embd", "rotary_dim", "tie"),
    [(4, 64, 8, False), (8, 128, 16, True), (16, 128, 4, False), (4, 128, 32, True)],
)
def test_converted_gptj_logits_equal_codegen(
    tmp_path: Path, tiny_codegen: Path, n_head: int, n_embd: int, rotary_dim: int | None, tie: bool
) -> None:
    source = tmp_path / "codegen"
    model = build_codegen(source, tiny_codegen, n_head=n_head, n_embd=n_embd, rotary_dim=rotary_dim, tie=tie)
    manifest = convert_codegen_to_gptj(source, tmp_path / "gptj", check_layers=2, log=lambda _: None)
    assert manifest.mp_num == 4 and manifest.untied_embeddings == tie
    assert manifest.self_check is not None and manifest.self_check["max_abs_diff"] == 0.0
    config = json.loads((tmp_path / "gptj" / "config.json").read_text(encoding="utf-8"))
    assert config["model_type"] == "gptj" and config["tie_word_embeddings"] is False
    assert config["rotary_dim"] == (rotary_dim or n_embd // n_head) and config["n_positions"] == 256
    ids = torch.randint(0, model.config.vocab_size, (2, 20), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(input_ids=ids).logits
    got = gptj_logits(tmp_path / "gptj", ids)
    # the same float32 operations in the same order: equal to the bit (the tolerance would be 1e-4 * logit scale)
    assert torch.equal(expected, got), float((expected - got).abs().max())
    on_disk = json.loads((tmp_path / "gptj" / MANIFEST_NAME).read_text(encoding="utf-8"))
    assert on_disk["source_files"][0]["sha256"] and on_disk["infill_sentinels"]["<mask_1>"] >= 0


def test_qkv_blocks_round_trip() -> None:
    weight = torch.arange(3 * 16 * 2, dtype=torch.float32).reshape(48, 2)
    q, k, v = split_qkv(weight, 4)
    assert torch.equal(q[:4], weight[:4]) and torch.equal(v[:4], weight[4:8]) and torch.equal(k[:4], weight[8:12])
    eight = repack_qkv(weight, 4, 8)
    assert all(torch.equal(a, b) for a, b in zip(split_qkv(eight, 8), (q, k, v), strict=True))
    assert torch.equal(repack_qkv(eight, 8, 4), weight)


def make_codegen2_like(folder: Path, tiny_codegen: Path) -> Any:
    """A checkpoint laid out as CodeGen2 (8 qkv blocks, its own modeling_codegen.py saying so), saved as .bin shards."""
    from safetensors.torch import load_file

    model = build_codegen(folder, tiny_codegen, n_head=8, n_embd=128, rotary_dim=16, seed=3)
    state = load_file(str(folder / "model.safetensors"))
    (folder / "model.safetensors").unlink()
    for name in list(state):
        if name.endswith("qkv_proj.weight"):
            state[name] = repack_qkv(state[name], 4, 8)
    names = sorted(state)
    shards = {"pytorch_model-00001-of-00002.bin": names[: len(names) // 2]}
    shards["pytorch_model-00002-of-00002.bin"] = names[len(names) // 2 :]
    weight_map = {}
    for file_name, part in shards.items():
        torch.save({n: state[n] for n in part}, folder / file_name)
        weight_map.update(dict.fromkeys(part, file_name))
    index = {"metadata": {}, "weight_map": weight_map}
    (folder / "pytorch_model.bin.index.json").write_text(json.dumps(index), encoding="utf-8")
    (folder / "modeling_codegen.py").write_text("def forward(qkv):\n    # TPU-v3\n    mp_num = 8\n", encoding="utf-8")
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_codegen.CodeGenForCausalLM"}
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return model


def test_codegen2_layout_from_bin_shards_and_its_own_modelling_code(tmp_path: Path, tiny_codegen: Path) -> None:
    source = tmp_path / "codegen2"
    model = make_codegen2_like(source, tiny_codegen)
    config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    assert detect_mp_num(source, config)[0] == 8
    manifest = convert_codegen_to_gptj(source, tmp_path / "gptj", log=lambda _: None)
    assert manifest.mp_num == 8 and "modeling_codegen.py" in manifest.mp_num_reason
    assert [f.name for f in manifest.source_files][:2] == [
        "pytorch_model-00001-of-00002.bin",
        "pytorch_model-00002-of-00002.bin",
    ]
    ids = torch.randint(0, model.config.vocab_size, (1, 24), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = model(input_ids=ids).logits  # the original 4-block model before the 8-block re-pack
    assert torch.equal(expected, gptj_logits(tmp_path / "gptj", ids))
    # forcing transformers' 4 blocks on it is caught by the self-check, and nothing is left behind
    with pytest.raises(ConfigError, match=r"self-check failed.*4 blocks"):
        convert_codegen_to_gptj(source, tmp_path / "wrong", mp_num=4, log=lambda _: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["codegen2", "gptj"]
    # custom modelling code named in config.json but missing: the count is unknown, so ask for it
    (source / "modeling_codegen.py").unlink()
    with pytest.raises(ConfigError, match="qkv block count is unknown"):
        convert_codegen_to_gptj(source, tmp_path / "unknown", log=lambda _: None)


def test_bad_input_is_refused_and_leaves_nothing(tmp_path: Path, tiny_codegen: Path, tiny_llama: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ConfigError, match=r"'llama' checkpoint.*not CodeGen"):
        convert_codegen_to_gptj(tiny_llama, out / "a", log=lambda _: None)
    with pytest.raises(ConfigError, match=r"self-check failed.*2 blocks"):
        convert_codegen_to_gptj(tiny_codegen, out / "b", mp_num=2, log=lambda _: None)
    no_tokenizer = tmp_path / "no-tokenizer"
    no_tokenizer.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_codegen / name, no_tokenizer / name)
    with pytest.raises(ConfigError, match="has no tokenizer"):
        convert_codegen_to_gptj(no_tokenizer, out / "c", log=lambda _: None)
    with pytest.raises(ConfigError, match="is not a folder"):
        convert_codegen_to_gptj(tmp_path / "missing", out / "d", log=lambda _: None)
    assert list(out.iterdir()) == []  # no destination, no partial folder


def test_vllm_cache_converts_once_and_keeps_failures_out(
    tmp_path: Path, tiny_codegen: Path, tiny_llama: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("MALOT_CODEGEN_CACHE", str(cache))
    assert codegen_cache_root() == cache
    messages: list[str] = []
    assert prepare_vllm_model(str(tiny_llama), log=messages.append) == str(tiny_llama)  # Llama: loaded directly
    assert messages == [] and not cache.exists()
    served = Path(prepare_vllm_model(str(tiny_codegen), log=messages.append))
    assert served.parent == cache and served.name == f"codegen-{cache_key(tiny_codegen)}"
    assert (served / MANIFEST_NAME).is_file() and "converting it once" in messages[0]
    stamp = (served / "model.safetensors").stat().st_mtime_ns
    messages.clear()
    assert prepare_vllm_model(str(tiny_codegen), log=messages.append) == str(served)
    assert messages == [f"CodeGen checkpoint {tiny_codegen}: using its GPT-J conversion for vLLM at {served}"]
    assert (served / "model.safetensors").stat().st_mtime_ns == stamp  # reused, not rewritten
    # a source without a tokenizer fails with a clear error and leaves only the good conversion in the cache
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_codegen / name, broken / name)
    with pytest.raises(ConfigError, match=r"cannot serve CodeGen checkpoint .* has no tokenizer"):
        prepare_vllm_model(str(broken), log=messages.append)
    assert [p.name for p in cache.iterdir()] == [served.name]
    doctor = {c.name: c.detail for c in checks(Settings(llm=LLMSettings(model="script:x")))}
    assert str(cache) in doctor["vllm: CodeGen -> GPT-J cache"]


def test_cli_convert_codegen(tmp_path: Path, tiny_codegen: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["llm", "convert-codegen", str(tiny_codegen), str(tmp_path / "gptj"), "--json"])
    captured = capsys.readouterr()
    assert code == 0 and json.loads(captured.out)["mp_num"] == 4 and "self-check passed" in captured.err
    code = main(["llm", "convert-codegen", str(tiny_codegen), str(tmp_path / "gptj")])
    captured = capsys.readouterr()
    assert code == 2 and "already exists" in captured.err and "Traceback" not in captured.err


def test_bfloat16_source_without_head_bias(tmp_path: Path, tiny_codegen: Path) -> None:
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    source = tmp_path / "bf16"
    model = build_codegen(source, tiny_codegen, n_head=4, n_embd=64, rotary_dim=8, seed=5)
    state = {k: v.to(torch.bfloat16) for k, v in load_file(str(source / "model.safetensors")).items()}
    del state["lm_head.bias"]  # an exporter that dropped a zero bias: the converter writes zeros
    save_file(state, str(source / "model.safetensors"), metadata={"format": "pt"})
    manifest = convert_codegen_to_gptj(source, tmp_path / "gptj", log=lambda _: None)
    assert manifest.self_check is not None and manifest.self_check["max_abs_diff"] == 0.0
    with safe_open(str(tmp_path / "gptj" / "model.safetensors"), framework="pt") as f:
        assert f.get_slice("transformer.h.0.attn.q_proj.weight").get_dtype() == "BF16"
        assert not f.get_tensor("lm_head.bias").any()
    with torch.no_grad():  # the reference: the same weights rounded to bfloat16 (buffers such as rotary tables kept)
        for p in model.parameters():
            p.copy_(p.to(torch.bfloat16).float())
        model.lm_head.bias.zero_()
    ids = torch.randint(0, model.config.vocab_size, (1, 12), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        expected = model(input_ids=ids).logits
    assert torch.equal(expected, gptj_logits(tmp_path / "gptj", ids))
