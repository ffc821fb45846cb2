"""N2N: the reward formula, both REINFORCE policies on known rewards, the two-stage search and the tool."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from malot_sparse.core.mlp import build_mlp, train_classifier  # noqa: E402
from malot_sparse.core.structured import drop_hidden_layers  # noqa: E402
from malot_sparse.n2n import n2n, n2n_reward, train_removal_policy, train_shrink_policy  # noqa: E402

from malot.errors import ToolError  # noqa: E402


def test_reward_is_c_times_2_minus_c_times_the_accuracy_ratio() -> None:
    assert n2n_reward(1000, 1000, 0.9, 0.9) == 0.0  # no compression, no reward
    assert n2n_reward(500, 1000, 0.9, 0.9) == pytest.approx(0.75)
    assert n2n_reward(100, 1000, 0.45, 0.9) == pytest.approx(0.9 * 1.1 * 0.5)
    assert n2n_reward(0, 1000, 0.9, 0.9) == pytest.approx(1.0)
    with pytest.raises(ToolError, match="accuracy"):
        n2n_reward(10, 100, 0.5, 0.0)
    with pytest.raises(ToolError, match="positive"):
        n2n_reward(10, 0, 0.5, 0.5)


def test_removal_policy_learns_which_layers_to_remove_from_the_reward() -> None:
    dims = [4, 8, 8, 8, 8, 3]  # hidden layers 1-3 are 8->8 and removable, layer 0 (4->8) is not
    removable = [False, True, True, True]

    def reward(keep: tuple[int, ...]) -> float:
        assert keep[0] == 1 and keep[-1] == 1  # fixed layers are never removed
        return (1 - keep[1]) + (1 - keep[2]) - 2.0 * (1 - keep[3])

    trace = train_removal_policy(dims, removable, reward, updates=40, rollouts=5, lr=0.1, seed=0)
    assert trace.best_action == (1, 0, 0, 1, 1)
    assert statistics.mean(trace.rewards[-25:]) > statistics.mean(trace.rewards[:25]) + 0.5


def test_shrink_policy_learns_the_rewarded_ratios() -> None:
    target = (0, 2, 1)

    def reward(action: tuple[int, ...]) -> float:
        return -float(sum(abs(a - t) for a, t in zip(action, target, strict=True)))

    trace = train_shrink_policy([6, 16, 16, 16, 3], [0.25, 0.5, 0.75, 1.0], reward, updates=50, rollouts=5, lr=0.1)
    assert trace.best_action == target
    assert statistics.mean(trace.rewards[-25:]) > statistics.mean(trace.rewards[:25]) + 0.5


def _task(seed: int = 0, n: int = 300) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    return x, (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 0.7).long()


def test_two_stage_search_returns_a_smaller_student_with_the_reward_of_its_compression() -> None:
    x, y = _task()
    torch.manual_seed(0)
    teacher = build_mlp(6, [16, 16, 16], 3)
    train_classifier(teacher, x[:200], y[:200], steps=100, lr=0.01)
    result = n2n(
        teacher,
        x[:200],
        y[:200],
        x[200:],
        y[200:],
        removal_updates=3,
        shrink_updates=3,
        rollouts=3,
        student_steps=30,
        seed=0,
    )
    params = sum(p.numel() for p in result.student.parameters())
    teacher_params = sum(p.numel() for p in teacher.parameters())
    assert result.compression == pytest.approx(1 - params / teacher_params)
    assert result.reward == pytest.approx(
        n2n_reward(params, teacher_params, result.student_accuracy, result.teacher_accuracy)
    )
    assert result.reward >= max(result.removal.best_reward, 0.0)
    assert 0 < result.compression < 1 and result.evaluations >= 2
    assert len(result.widths) == sum(result.keep) - 1  # kept hidden layers (the head is always kept)


def test_removing_a_layer_that_changes_width_is_refused() -> None:
    with pytest.raises(ToolError, match="cannot be removed"):
        drop_hidden_layers(build_mlp(6, [16, 8], 3), [True, False])
    assert len(drop_hidden_layers(build_mlp(6, [8, 8], 3), [True, False])) == 3


@pytest.mark.slow
def test_n2n_compress_tool_through_the_registry(tmp_path: Path) -> None:
    from malot_sparse.core.mlp import load_mlp
    from safetensors.torch import save_file

    from malot.tools import get_registry

    x, y = _task(1, 300)
    data = tmp_path / "data.safetensors"
    save_file({"x": x, "y": y}, str(data))
    args = {
        "data": str(data),
        "out": str(tmp_path / "student.safetensors"),
        "teacher_widths": [16, 16, 16],
        "teacher_steps": 60,
        "removal_updates": 2,
        "shrink_updates": 2,
        "rollouts": 2,
        "student_steps": 20,
    }
    out = get_registry().run_sync("n2n_compress", args, isolation="inline")
    student, _, extra = load_mlp(out.out)  # type: ignore[attr-defined]
    assert extra["compression"] == pytest.approx(out.compression)  # type: ignore[attr-defined]
    assert [m.out_features for m in student if isinstance(m, torch.nn.Linear)][:-1] == out.student_widths  # type: ignore[attr-defined]
    with pytest.raises(ToolError, match="ratios"):
        get_registry().run_sync("n2n_compress", {**args, "ratios": [0.0, 1.0]}, isolation="inline")
    from malot_sparse.core.mlp import save_mlp

    wrong = save_mlp(build_mlp(5, [16, 16], 3), tmp_path / "wrong.safetensors")  # 5 features, the data have 6
    with pytest.raises(ToolError, match="takes 5 features"):
        get_registry().run_sync("n2n_compress", {**args, "teacher": str(wrong)}, isolation="inline")
