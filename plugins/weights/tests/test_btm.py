"""Branch-Train-Merge in weight space: domain posterior, top-k, branching and averaging experts."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from malot_weights.btm import btm_average, btm_branch, domain_posterior, top_k_weights
from malot_weights.core import save_state_dict
from safetensors.torch import load_file

from malot.errors import ToolError
from malot.tools import ToolRegistry


def _experts(tmp_path: Path, n: int = 3) -> tuple[list[dict[str, torch.Tensor]], list[str]]:
    states, paths = [], []
    for i in range(n):
        g = torch.Generator().manual_seed(i)
        state = {"w": torch.randn(3, 2, generator=g), "b": torch.randn(3, generator=g), "step": torch.tensor(i)}
        path = tmp_path / f"expert{i}.safetensors"
        save_state_dict(state, path)
        states.append(state)
        paths.append(str(path))
    return states, paths


def test_domain_posterior() -> None:
    equal = torch.zeros(3, 5)
    assert domain_posterior(equal) == pytest.approx([1 / 3] * 3)
    assert domain_posterior(equal, prior=[2, 1, 1]) == pytest.approx([0.5, 0.25, 0.25])
    # expert 1 explains every text far better
    dominated = torch.tensor([[-50.0, -40.0], [-10.0, -12.0], [-60.0, -70.0]])
    assert domain_posterior(dominated) == pytest.approx([0, 1, 0], abs=1e-9)
    # per text: posterior [e^-1/(1+e^-1), 1/(1+e^-1)] and its mirror image, averaged: [0.5, 0.5]
    mixed = torch.tensor([[-2.0, -1.0], [-1.0, -2.0]])
    assert domain_posterior(mixed) == pytest.approx([0.5, 0.5])
    first = 1 / (1 + math.e)
    assert domain_posterior(torch.tensor([[-2.0], [-1.0]])) == pytest.approx([first, 1 - first])


def test_top_k_weights() -> None:
    assert top_k_weights([0.1, 0.5, 0.4], 2) == pytest.approx([0, 5 / 9, 4 / 9])
    assert top_k_weights([1, 1, 1], None) == pytest.approx([1 / 3] * 3)
    assert top_k_weights([0.2, 0.2, 0.6], 1) == [0.0, 0.0, 1.0]
    with pytest.raises(ToolError):
        top_k_weights([0.0, 0.0], None)


def test_branch_with_one_hot_weights_copies_that_expert_and_average_is_the_mean(tmp_path: Path) -> None:
    states, paths = _experts(tmp_path)
    registry = ToolRegistry()
    registry.register(btm_branch)
    registry.register(btm_average)
    out = registry.run_sync(
        "btm_branch",
        {"experts": paths, "weights": [0.2, 0.7, 0.1], "top_k": 1, "output": str(tmp_path / "b.safetensors")},
        isolation="inline",
    )
    assert out.model_dump()["weights"] == [0.0, 1.0, 0.0]
    branched = load_file(str(tmp_path / "b.safetensors"))
    assert all(torch.equal(branched[k], states[1][k]) for k in ("w", "b"))  # bit-identical copy of expert 1
    registry.run_sync("btm_average", {"experts": paths, "output": str(tmp_path / "avg")}, isolation="inline")
    averaged = load_file(str(tmp_path / "avg" / "model.safetensors"))
    mean_w = (states[0]["w"] + states[1]["w"] + states[2]["w"]) / 3
    assert torch.allclose(averaged["w"], mean_w, atol=1e-6)
    assert torch.equal(averaged["step"], states[0]["step"])
    registry.run_sync(
        "btm_branch",
        {"experts": paths, "weights": [1, 3, 0], "output": str(tmp_path / "w.safetensors")},
        isolation="inline",
    )
    weighted = load_file(str(tmp_path / "w.safetensors"))
    assert torch.allclose(weighted["w"], 0.25 * states[0]["w"] + 0.75 * states[1]["w"], atol=1e-6)
    with pytest.raises(ToolError, match="needs 'weights' or 'data'"):
        registry.run_sync("btm_branch", {"experts": paths, "output": str(tmp_path / "x")}, isolation="inline")


def test_branch_weights_from_the_domain_posterior_of_tiny_lms(tmp_path: Path) -> None:
    from malot_weights.btm import sequence_log_likelihoods
    from malot_weights.causal_lm import build_tiny_lm_folder, load_causal_lm, load_tokenizer

    words = ["the", "cat", "dog", "sat", "ran", "on", "a", "mat", "log"]
    experts = [build_tiny_lm_folder(tmp_path / f"e{i}", words, hidden_size=16, layers=1, seed=i) for i in (1, 2)]
    data = tmp_path / "new_domain.txt"
    data.write_text("the cat sat on a mat\na dog ran\n", encoding="utf-8")
    out = btm_branch(
        btm_branch.__malot_tool__.validate_arguments(  # type: ignore[attr-defined]
            {"experts": [str(e) for e in experts], "data": str(data), "output": str(tmp_path / "new")}
        )
    )
    texts = ["the cat sat on a mat", "a dog ran"]
    rows = []
    for e in experts:
        model = load_causal_lm(e)
        model.eval()
        rows.append(sequence_log_likelihoods(model, load_tokenizer(e), texts))
    assert out.weights == pytest.approx(domain_posterior(torch.stack(rows)))
    assert (tmp_path / "new" / "config.json").is_file()
