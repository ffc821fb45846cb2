"""``malot llm``, ``malot dev make-tiny-model`` and the LLM doctor checks."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from malot.cli.app import main
from malot.config import LLMSettings, Settings
from malot.llm.doctor import checks


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_generate_with_a_script_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "answers.json"
    script.write_text(json.dumps({"foo": ["theorem foo := rfl\nextra"]}), encoding="utf-8")
    code, out, _ = run_cli(
        capsys, "llm", "generate", "--model", f"script:{script}", "--stop", "\n", "--json", "prove foo"
    )
    assert code == 0
    assert json.loads(out)["completions"][0]["text"] == "theorem foo := rfl"
    code, _, err = run_cli(capsys, "llm", "generate", "--model", f"script:{script}", "no match")
    assert code == 2 and "no response for prompt" in err


def test_generate_score_and_capabilities_with_transformers(
    tiny_llama: Path, tiny_codegen: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(
        capsys, "llm", "generate", "-m", str(tiny_llama), "--backend", "hf", "-n", "2", "--max-tokens", "5", "--json",
        "--logprobs", "--seed", "1", "theorem",
    )  # fmt: skip
    result = json.loads(out)
    assert code == 0 and len(result["completions"]) == 2
    assert all(len(c["logprobs"]) == c["tokens"] for c in result["completions"])
    code, out, _ = run_cli(capsys, "llm", "score", "-m", str(tiny_llama), "--backend", "hf", "--json", "a", " b c")
    assert code == 0 and json.loads(out)["total"] < 0
    code, out, _ = run_cli(capsys, "llm", "capabilities", "-m", str(tiny_codegen), "--backend", "hf", "--json")
    assert code == 0 and json.loads(out)["infill"] is True


def test_make_tiny_model_is_deterministic(tmp_path: Path, tiny_llama: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "dev", "make-tiny-model", str(tmp_path), "--json")
    folders = json.loads(out)
    assert code == 0 and set(folders) == {"llama", "codegen"}

    def digest(folder: Path) -> str:
        return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()

    assert digest(Path(folders["llama"])) == digest(tiny_llama)
    tokenizer = json.loads((Path(folders["codegen"]) / "tokenizer.json").read_text(encoding="utf-8"))
    specials = {t["content"] for t in tokenizer["added_tokens"]}
    assert {"<mask_1>", "<sep>", "<eom>", "<|endoftext|>", "<|im_start|>", "<|im_end|>"} <= specials
    config = json.loads((Path(folders["codegen"]) / "config.json").read_text(encoding="utf-8"))
    assert config["model_type"] == "codegen"


def by_name(settings: Settings) -> dict[str, tuple[str, str]]:
    return {c.name: (c.status, c.detail) for c in checks(settings)}


def test_doctor_lists_backends_and_checks_the_configured_model(tmp_path: Path) -> None:
    script = tmp_path / "s.jsonl"
    found = by_name(Settings(llm=LLMSettings(model=f"script:{script}")))
    for backend in ("scripted", "openai-compatible", "transformers", "vllm in-process"):
        assert found[f"backend: {backend}"][0] in ("ok", "warn", "missing")
    assert found[f"model script:{script}"] == ("error", f"script file {script} does not exist")
    down = by_name(Settings(llm=LLMSettings(model="http://127.0.0.1:9/v1#m")))
    assert down["model http://127.0.0.1:9/v1#m"][0] == "error"
    assert "not reachable" in down["model http://127.0.0.1:9/v1#m"][1]
