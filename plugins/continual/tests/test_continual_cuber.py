"""CUBER: nothing flagged is exactly GPM; the two tests flag what they should; the tool runs from the registry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from malot_continual.core.gpm import new_basis, project_out, stack_bases
from malot_continual.core.mlp import build_mlp
from malot_continual.core.synthetic import linear_teacher_task
from malot_continual.cuber import GradientMemory, cuber_flags, cuber_project, cuber_step, learn_task

from malot.errors import ToolError
from malot.tools import ToolRegistry


def _memory(seed: int = 0) -> tuple[GradientMemory, list[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randn(50, 8, generator=g) @ torch.randn(8, 12, generator=g) * torch.tensor([1.0] * 4 + [0.0] * 8)
    b0 = new_basis(inputs, [], 0.99)
    b1 = new_basis(torch.randn(50, 12, generator=g), [b0], 0.9)
    grads = [torch.randn(5, 12, generator=g)]
    return GradientMemory(
        bases=[[b0, b1]], grads=[[torch.randn(5, 12, generator=g), torch.randn(5, 12, generator=g)]]
    ), grads


def test_bases_are_orthonormal_and_mutually_orthogonal() -> None:
    memory, _ = _memory()
    m = stack_bases(memory.bases[0], 12)
    assert torch.allclose(m.T @ m, torch.eye(m.shape[1]), atol=1e-5)
    assert memory.bases[0][0].shape[1] <= 4  # the first task's inputs span 4 directions


def test_nothing_flagged_is_exactly_gpm() -> None:
    memory, grads = _memory()
    m = stack_bases(memory.bases[0], 12)
    gpm = project_out(grads[0], m)
    for flags in (None, [[False, False]]):
        out = cuber_project(grads, memory, flags)
        assert torch.allclose(out[0], gpm, atol=1e-6)
    assert float((out[0] @ m).abs().max()) < 1e-5  # nothing left inside any old subspace


def test_flagged_task_keeps_its_scaled_in_subspace_update() -> None:
    memory, grads = _memory()
    b0, b1 = memory.bases[0]
    out = cuber_project(grads, memory, [[True, False]], scale=0.5)[0]
    expected = project_out(grads[0], stack_bases([b0, b1], 12)) + 0.5 * (grads[0] @ b0) @ b0.T
    assert torch.allclose(out, expected, atol=1e-5)


def test_flags_need_sufficient_projection_and_positive_correlation() -> None:
    memory, _ = _memory()
    b0 = memory.bases[0][0]
    inside = torch.randn(5, b0.shape[1]) @ b0.T  # entirely in task 0's subspace
    memory.grads[0][0] = inside.clone()
    assert cuber_flags([inside], memory)[0] == [True, False]
    memory.grads[0][0] = -inside  # the old task's gradient points the other way: no flag
    assert cuber_flags([inside], memory)[0] == [False, False]
    outside = project_out(torch.randn(5, 12), stack_bases(memory.bases[0], 12))
    assert cuber_flags([outside], memory)[0] == [False, False]  # no projection at all


def test_cuber_with_nothing_flagged_trains_exactly_like_gpm() -> None:
    proj, teacher = torch.randn(4, 10), torch.randn(4, 3)
    tasks = [linear_teacher_task(proj, teacher * s, 60, seed=s + 3) for s in (1, -1)]
    states = []
    for method, eps in (("gpm", 0.5), ("cuber", 1.0)):  # ε = 1: no gradient projects *fully*, so nothing is flagged
        torch.manual_seed(0)
        model = build_mlp(10, [16, 16], 3, heads=2)
        memory = GradientMemory()
        flags = [
            learn_task(model, t, memory, head=i, method=method, epochs=3, projection_threshold=eps)
            for i, t in enumerate(tasks)
        ]
        assert not any(f for layer in flags[1] for f in layer)
        states.append(model.state_dict())
    for name in states[0]:
        assert torch.equal(states[0][name], states[1][name]), name


def test_gpm_protects_the_old_tasks_layer_outputs() -> None:
    proj, teacher = torch.randn(3, 10), torch.randn(3, 3)
    a, b = (linear_teacher_task(proj, t, 80, seed=i) for i, t in enumerate((teacher, torch.randn(3, 3))))
    torch.manual_seed(0)
    model = build_mlp(10, [16], 3, heads=2)
    memory = GradientMemory()
    learn_task(model, a, memory, head=0, method="gpm", epochs=3, threshold=1.0)
    before = model.features(a.x).detach().clone()
    learn_task(model, b, memory, head=1, method="gpm", epochs=5, threshold=1.0)
    assert torch.allclose(model.features(a.x), before, atol=1e-4)  # inputs span 3 dims: all kept (ε_th = 1)


def _save(path: Path, x: np.ndarray, y: np.ndarray) -> str:
    np.savez(path, x=x, y=y)
    return str(path)


def test_tool_learns_a_stream_through_the_registry(tmp_path: Path) -> None:
    proj, teacher = torch.randn(4, 10), torch.randn(4, 3)
    files = []
    for i, sign in enumerate((1.0, 1.0)):
        d = linear_teacher_task(proj, teacher * sign, 60, seed=i)
        files.append(_save(tmp_path / f"t{i}.npz", d.x.numpy(), d.y.numpy()))
    registry = ToolRegistry()
    registry.register(cuber_step)
    common = {
        "model": str(tmp_path / "m.safetensors"),
        "memory": str(tmp_path / "mem.safetensors"),
        "hidden": [16],
        "n_classes": 3,
        "max_tasks": 2,
        "epochs": 3,
    }
    first = registry.run_sync("cuber_step", {"task": files[0], **common}, isolation="inline")
    second = registry.run_sync("cuber_step", {"task": files[1], "eval_tasks": files[:1], **common}, isolation="inline")
    assert first.task_index == 0 and second.task_index == 1  # type: ignore[attr-defined]
    assert len(second.flags) == 1 and len(second.flags[0]) == 1  # type: ignore[attr-defined]
    assert 0.0 <= second.accuracy_old[0] <= 1.0  # type: ignore[attr-defined]
    with pytest.raises(ToolError, match="all used"):
        registry.run_sync("cuber_step", {"task": files[0], **common}, isolation="inline")


def test_bad_input_is_refused(tmp_path: Path) -> None:
    registry = ToolRegistry()
    registry.register(cuber_step)
    bad = _save(tmp_path / "nan.npz", np.full((4, 3), np.nan, np.float32), np.zeros(4, np.int64))
    args = {"model": str(tmp_path / "m.safetensors"), "memory": str(tmp_path / "mem.safetensors")}
    with pytest.raises(ToolError, match="NaN"):
        registry.run_sync("cuber_step", {"task": bad, **args}, isolation="inline")
    short = _save(tmp_path / "short.npz", np.zeros((4, 3), np.float32), np.zeros(3, np.int64))
    with pytest.raises(ToolError, match="one integer label per row"):
        registry.run_sync("cuber_step", {"task": short, **args}, isolation="inline")
    ok = _save(tmp_path / "ok.npz", np.zeros((4, 3), np.float32), np.zeros(4, np.int64))
    with pytest.raises(ToolError, match="unknown method"):
        registry.run_sync("cuber_step", {"task": ok, "method": "ewc", **args}, isolation="inline")
