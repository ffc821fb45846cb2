"""Task arithmetic and aTLAS: exact properties, learning on a synthetic task, and the tools on files and tiny LMs."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from malot_weights.core import parameter_blocks, save_state_dict, task_vector
from malot_weights.task_vectors import (
    atlas,
    compose_blockwise,
    entropy_loss,
    learn_atlas,
    task_arithmetic,
    task_arithmetic_states,
)
from safetensors.torch import load_file

from malot.tools import ToolRegistry


def _mlp(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))


def _perturbed(state: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: v + 0.3 * torch.randn(v.shape, generator=g) for k, v in state.items()}


def test_all_atlas_coefficients_equal_c_is_task_arithmetic_with_c() -> None:
    model = _mlp(0)
    base = {k: v.detach().clone() for k, v in model.state_dict().items()}
    finetuned = [_perturbed(base, 1), _perturbed(base, 2)]
    vectors = [task_vector(f, base) for f in finetuned]
    c = 0.375  # exactly representable in float32, so the learned-coefficient path returns it unchanged
    for granularity in ("tensor", "layer", "model"):
        blocks = parameter_blocks(list(base), granularity)
        composed = compose_blockwise(base, vectors, {b: [c, c] for b in blocks}, blocks)
        reference = task_arithmetic_states(base, finetuned, c)
        assert all(torch.allclose(composed[k], reference[k], atol=1e-6) for k in base)
    # through the learning code path: no steps, every coefficient initialised to c
    xs = torch.randn(8, 4)
    result = learn_atlas(model, vectors, [(xs, torch.zeros(8, dtype=torch.long))], steps=0, init=c)
    assert all(v == [c, c] for v in result.coefficients.values())
    assert all(torch.allclose(result.state[k], task_arithmetic_states(base, finetuned, c)[k], atol=1e-6) for k in base)


def test_supervised_atlas_learns_which_task_vector_helps() -> None:
    """The target task is exactly what task vector 0 encodes; task vector 1 is noise. aTLAS should find that."""
    model = _mlp(0)
    base = {k: v.detach().clone() for k, v in model.state_dict().items()}
    teacher = _perturbed(base, 3)
    noise = _perturbed(base, 4)
    g = torch.Generator().manual_seed(5)
    xs = torch.randn(64, 4, generator=g)
    with torch.no_grad():
        labels = torch.func.functional_call(model, teacher, (xs,)).argmax(-1)
    vectors = [task_vector(teacher, base), task_vector(noise, base)]
    result = learn_atlas(model, vectors, [(xs, labels)], steps=60, lr=0.1, init=0.0, granularity="tensor")
    assert result.losses[-1] < 0.7 * result.losses[0]
    mean0 = sum(c[0] for c in result.coefficients.values()) / len(result.coefficients)
    mean1 = sum(abs(c[1]) for c in result.coefficients.values()) / len(result.coefficients)
    assert mean0 > 0.3 and mean0 > 2 * mean1
    with torch.no_grad():
        accuracy = (torch.func.functional_call(model, result.state, (xs,)).argmax(-1) == labels).float().mean()
    assert float(accuracy) > 0.9


def test_unsupervised_entropy_objective_lowers_prediction_entropy() -> None:
    model = _mlp(0)
    base = {k: v.detach().clone() for k, v in model.state_dict().items()}
    vectors = [task_vector(_perturbed(base, 6), base)]
    xs = torch.randn(32, 4)
    result = learn_atlas(model, vectors, [xs], objective="entropy", steps=30, lr=0.1, init=0.0)
    with torch.no_grad():
        before = entropy_loss(model(xs), xs)
        after = entropy_loss(torch.func.functional_call(model, result.state, (xs,)), xs)
    assert float(after) < float(before) and result.losses[-1] < result.losses[0]


def test_task_arithmetic_tool_on_files(tmp_path: Path) -> None:
    base = {k: v.detach().clone() for k, v in _mlp(0).state_dict().items()}
    ft1, ft2 = _perturbed(base, 1), _perturbed(base, 2)
    tau2 = {k: v for k, v in task_vector(ft2, base).items() if k != "0.bias"}  # a missing tensor counts as zero
    for name, state in {"base": base, "ft1": ft1, "tau2": tau2}.items():
        save_state_dict(state, tmp_path / f"{name}.safetensors")
    registry = ToolRegistry()
    registry.register(task_arithmetic)
    args = {
        "base": str(tmp_path / "base.safetensors"),
        "models": [str(tmp_path / "ft1.safetensors")],
        "task_vectors": [str(tmp_path / "tau2.safetensors")],
        "coefficients": [0.5, 2.0],
        "output": str(tmp_path / "out.safetensors"),
    }
    out = registry.run_sync("task_arithmetic", args, isolation="inline")
    assert out.model_dump()["coefficients"] == [0.5, 2.0]
    merged = load_file(str(tmp_path / "out.safetensors"))
    for k in base:
        expected = base[k] + 0.5 * (ft1[k] - base[k]) + (2.0 * tau2[k] if k in tau2 else 0)
        assert torch.allclose(merged[k], expected, atol=1e-6)


def test_atlas_tool_on_tiny_language_models(tmp_path: Path) -> None:
    from malot_weights.causal_lm import build_tiny_lm_folder
    from transformers import AutoModelForCausalLM

    words = ["the", "cat", "dog", "sat", "ran", "on", "a", "mat", "log"]
    base_dir = build_tiny_lm_folder(tmp_path / "base", words, hidden_size=16, layers=1, seed=1)
    base_state = load_file(str(base_dir / "model.safetensors"))
    for i in (1, 2):
        save_state_dict(_perturbed(base_state, 10 + i), tmp_path / f"ft{i}.safetensors")
    data = tmp_path / "data.txt"
    data.write_text("the cat sat on a mat\nthe dog ran on a log\n", encoding="utf-8")
    args = atlas.__malot_tool__.validate_arguments(  # type: ignore[attr-defined]
        {
            "base": str(base_dir),
            "models": [str(tmp_path / "ft1.safetensors"), str(tmp_path / "ft2.safetensors")],
            "data": str(data),
            "objective": "supervised",
            "granularity": "layer",
            "steps": 8,
            "output": str(tmp_path / "out"),
        }
    )
    result = atlas(args)  # type: ignore[arg-type]
    assert result.last_loss is not None and result.first_loss is not None and result.last_loss < result.first_loss
    saved = json.loads(Path(result.coefficients_file).read_text())
    assert set(saved["coefficients"]) == set(saved["blocks"]) and len(result.mean_coefficient) == 2
    loaded = AutoModelForCausalLM.from_pretrained(str(tmp_path / "out"))
    assert loaded.config.hidden_size == 16
