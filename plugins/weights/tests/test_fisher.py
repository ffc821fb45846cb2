"""Fisher merging: exact properties in memory, the streaming tool on files, and the CLI on tiny causal LMs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from malot_weights.core import diagonal_fisher, save_state_dict, weighted_average
from malot_weights.fisher import fisher_merge, fisher_merge_modules, fisher_merge_states
from safetensors.torch import load_file

from malot.cli.app import main
from malot.tools import ToolRegistry, tool_of


def _states(seed: int = 0) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    a = {"w": torch.randn(4, 3, generator=g), "b": torch.randn(4, generator=g), "count": torch.tensor(5)}
    b = {"w": torch.randn(4, 3, generator=g), "b": torch.randn(4, generator=g), "count": torch.tensor(9)}
    return a, b


def test_equal_fishers_give_the_plain_weighted_average() -> None:
    a, b = _states()
    g = torch.Generator().manual_seed(1)
    f = {"w": torch.rand(4, 3, generator=g) + 0.1, "b": torch.rand(4, generator=g) + 0.1}
    merged = fisher_merge_states([a, b], [f, f])
    plain = weighted_average([a, b])
    assert all(torch.allclose(merged[k], plain[k], atol=1e-6) for k in ("w", "b"))
    assert torch.equal(merged["count"], a["count"])
    weighted = fisher_merge_states([a, b], [f, f], weights=[3.0, 1.0])
    assert torch.allclose(weighted["w"], 0.75 * a["w"] + 0.25 * b["w"], atol=1e-6)


def test_a_model_without_information_defers_to_the_other_and_the_floor_applies() -> None:
    a, b = _states()
    ones = {"w": torch.ones(4, 3), "b": torch.ones(4)}
    zeros = {"w": torch.zeros(4, 3), "b": torch.zeros(4)}
    merged = fisher_merge_states([a, b], [ones, zeros], floor=1e-12)
    assert torch.allclose(merged["w"], a["w"], atol=1e-6)
    floored = fisher_merge_states([a, b], [zeros, zeros], floor=1e-3)  # both at the floor: the plain average
    assert torch.allclose(floored["w"], (a["w"] + b["w"]) / 2, atol=1e-6)
    # per-entry weighting: F_a = 3, F_b = 1 everywhere -> 0.75 a + 0.25 b
    three = {"w": 3 * torch.ones(4, 3), "b": 3 * torch.ones(4)}
    assert torch.allclose(fisher_merge_states([a, b], [three, ones])["w"], 0.75 * a["w"] + 0.25 * b["w"], atol=1e-6)
    # normalising by the mean Fisher removes a global scale
    normalised = fisher_merge_states([a, b], [three, ones], normalize=True)
    assert torch.allclose(normalised["w"], (a["w"] + b["w"]) / 2, atol=1e-6)


def test_fisher_merge_modules_uses_each_models_own_fisher() -> None:
    torch.manual_seed(0)
    m1, m2 = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    xs = [torch.randn(1, 3) for _ in range(4)]
    merged = fisher_merge_modules([m1, m2], [xs, xs], labels="expected")
    f1 = diagonal_fisher(m1, xs, labels="expected")
    f2 = diagonal_fisher(m2, xs, labels="expected")
    expected = (f1["weight"] * m1.weight + f2["weight"] * m2.weight) / (f1["weight"] + f2["weight"])
    assert torch.allclose(merged["weight"], expected.detach(), atol=1e-5)


def test_tool_merges_safetensors_files_in_a_worker_process(tmp_path: Path) -> None:
    a, b = _states()
    fa = {"w": torch.full((4, 3), 2.0), "b": torch.full((4,), 2.0)}
    fb = {"w": torch.full((4, 3), 1.0)}  # no Fisher for "b": counts as ones
    for name, state in {"a": a, "b": b, "fa": fa, "fb": fb}.items():
        save_state_dict(state, tmp_path / f"{name}.safetensors")
    registry = ToolRegistry()
    registry.register(fisher_merge)
    t = tool_of(fisher_merge)
    assert t is not None and t.metadata.heavy and t.metadata.family == "weights"
    args = {
        "models": [str(tmp_path / "a.safetensors"), str(tmp_path / "b.safetensors")],
        "fishers": [str(tmp_path / "fa.safetensors"), str(tmp_path / "fb.safetensors")],
        "output": str(tmp_path / "merged.safetensors"),
        "dtype": "float16",
    }
    out = registry.run_sync("fisher_merge", args)  # heavy: runs in a spawned process
    assert out.model_dump()["tensors_merged"] == 2 and out.model_dump()["tensors_copied"] == 1
    merged = load_file(str(tmp_path / "merged.safetensors"))
    assert merged["w"].dtype == torch.float16 and merged["count"].dtype == torch.int64
    assert torch.allclose(merged["w"].float(), (2 * a["w"] + b["w"]) / 3, atol=2e-3)
    assert torch.allclose(merged["b"].float(), (2 * a["b"] + b["b"]) / 3, atol=2e-3)
    in_memory = fisher_merge_states([a, b], [fa, fb])
    assert torch.allclose(merged["w"].float(), in_memory["w"], atol=2e-3)


def test_cli_estimates_fishers_on_tiny_lms_and_writes_a_loadable_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from malot_weights.causal_lm import build_tiny_lm_folder
    from transformers import AutoModelForCausalLM

    words = ["the", "cat", "dog", "sat", "ran", "on", "a", "mat", "log"]
    a = build_tiny_lm_folder(tmp_path / "a", words, hidden_size=16, layers=1, seed=1)
    b = build_tiny_lm_folder(tmp_path / "b", words, hidden_size=16, layers=1, seed=2)
    data = tmp_path / "data.txt"
    data.write_text("the cat sat on a mat\nthe dog ran on a log\n", encoding="utf-8")
    args = {"models": [str(a), str(b)], "data": str(data), "n_examples": 2, "output": str(tmp_path / "merged")}
    monkeypatch.setenv("MALOT_PLUGINS", "weights")
    code = main(["tools", "run", "fisher_merge", "--args", json.dumps(args), "--json", "--isolation", "inline"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert len(result["fisher_files"]) == 2 and all(Path(f).is_file() for f in result["fisher_files"])
    merged = AutoModelForCausalLM.from_pretrained(str(tmp_path / "merged"))
    fishers = [load_file(f) for f in result["fisher_files"]]
    sa = AutoModelForCausalLM.from_pretrained(str(a)).state_dict()
    sb = AutoModelForCausalLM.from_pretrained(str(b)).state_dict()
    expected = fisher_merge_states([sa, sb], fishers)
    got = merged.state_dict()
    name = "model.layers.0.self_attn.q_proj.weight"
    assert torch.allclose(got[name], expected[name], atol=1e-6)
    assert not torch.allclose(got[name], (sa[name] + sb[name]) / 2, atol=1e-4)  # it is not the plain average
    assert (tmp_path / "merged" / "tokenizer.json").is_file()
