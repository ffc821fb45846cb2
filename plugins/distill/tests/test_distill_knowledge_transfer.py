"""knowledge_transfer (Fantastic Gains KL+DP): partition rule, zero loss for teacher = student, MLP and LM runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from malot_distill.core.data import save_tensors
from malot_distill.core.kd import soft_cross_entropy, soft_kl
from malot_distill.core.mlp import build_mlp, load_mlp, save_mlp
from malot_distill.knowledge_transfer import (
    KnowledgeTransferInput,
    dp_kd_loss,
    knowledge_transfer,
    partition,
    transfer,
)

from malot.errors import ToolError


def test_kd_terms_are_zero_for_equal_logits_and_soft_ce_with_one_hot_is_cross_entropy() -> None:
    logits = torch.randn(6, 5)
    assert torch.allclose(soft_kl(logits, logits.clone(), 2.0), torch.zeros(6), atol=1e-6)
    y = torch.randint(5, (6,))
    one_hot = F.one_hot(y, 5).float()
    assert torch.allclose(soft_cross_entropy(logits, one_hot), F.cross_entropy(logits, y, reduction="none"))


def test_partition_picks_the_more_confident_model_and_targets_are_complementary() -> None:
    teacher = torch.tensor([[5.0, 0.0], [0.0, 0.0], [0.0, 3.0]])
    initial = torch.tensor([[0.0, 0.0], [4.0, 0.0], [0.0, 5.0]])
    labels = torch.tensor([0, 0, 1])
    assert partition(teacher, initial, labels).tolist() == [True, False, False]
    assert partition(teacher, initial, None).tolist() == [True, False, False]
    student = torch.zeros(3, 2, requires_grad=True)
    _, chosen = dp_kd_loss(student, teacher, initial, labels)
    target = torch.where(chosen.unsqueeze(-1), teacher, initial)
    # every sample has exactly one target: the teacher's on the chosen rows, the initial student's elsewhere
    assert torch.equal(target[chosen], teacher[chosen]) and torch.equal(target[~chosen], initial[~chosen])


def test_teacher_equal_to_student_gives_zero_loss_and_no_change() -> None:
    student = build_mlp([4, 8, 3], seed=0)
    teacher = build_mlp([4, 8, 3], seed=0)
    before = {k: v.clone() for k, v in student.state_dict().items()}
    x, y = torch.randn(16, 4), torch.randint(3, (16,))
    result = transfer(student, teacher, lambda s: (x, y, None), lambda m, inp: m(inp), steps=5, lr=0.1)
    assert max(result.losses) == 0.0
    assert all(torch.equal(before[k], v) for k, v in student.state_dict().items())


def _task(tmp_path: Path) -> Path:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(120, 4, generator=gen)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    return save_tensors({"x": x, "y": y}, tmp_path / "data.safetensors")


def test_knowledge_transfer_tool_on_mlps_through_the_registry(tmp_path: Path) -> None:
    from malot.tools import get_registry

    data = _task(tmp_path)
    save_mlp(build_mlp([4, 16, 3], seed=0), tmp_path / "s.safetensors")
    save_mlp(build_mlp([4, 32, 3], seed=1), tmp_path / "t.safetensors")
    out = get_registry().run_sync(
        "knowledge_transfer",
        {
            "student": str(tmp_path / "s.safetensors"),
            "teacher": str(tmp_path / "t.safetensors"),
            "data": str(data),
            "out": str(tmp_path / "o.safetensors"),
            "steps": 5,
        },
        isolation="inline",
    )
    assert out.kind == "mlp" and 0.0 <= out.teacher_fraction <= 1.0  # type: ignore[attr-defined]
    load_mlp(tmp_path / "o.safetensors")


def test_bad_inputs_give_clear_errors(tmp_path: Path) -> None:
    data = _task(tmp_path)
    save_mlp(build_mlp([4, 16, 3], seed=0), tmp_path / "s.safetensors")
    save_mlp(build_mlp([4, 16, 5], seed=0), tmp_path / "t5.safetensors")
    base = {"student": str(tmp_path / "s.safetensors"), "data": str(data), "out": str(tmp_path / "o.safetensors")}
    with pytest.raises(ToolError, match="class count"):
        knowledge_transfer(KnowledgeTransferInput(teacher=str(tmp_path / "t5.safetensors"), **base))
    nan = save_tensors({"x": torch.full((4, 4), float("nan")), "y": torch.zeros(4).long()}, tmp_path / "n.safetensors")
    with pytest.raises(ToolError, match="NaN"):
        knowledge_transfer(KnowledgeTransferInput(teacher=base["student"], **{**base, "data": str(nan)}))
    folder = tmp_path / "lm"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    with pytest.raises(ToolError, match="different kinds"):
        knowledge_transfer(KnowledgeTransferInput(teacher=str(folder), **base))


@pytest.mark.slow
def test_transfer_between_two_tiny_causal_lms(tmp_path: Path, tiny_lm_pair: tuple[Path, Path]) -> None:
    from transformers import AutoModelForCausalLM

    student, teacher = tiny_lm_pair
    texts = tmp_path / "proofs.txt"
    texts.write_text("theorem t (a : Nat) : a + 0 = a := by\n  simp\nexample : 2 + 2 = 4 := by norm_num\n")
    same = knowledge_transfer(
        KnowledgeTransferInput(
            student=str(student), teacher=str(student), data=str(texts), out=str(tmp_path / "same")
        ).model_copy(update={"steps": 2, "batch_size": 2})
    )
    assert same.loss_first == 0.0 and same.loss_last == 0.0  # teacher = student: nothing to transfer
    out = knowledge_transfer(
        KnowledgeTransferInput(
            student=str(student), teacher=str(teacher), data=str(texts), out=str(tmp_path / "moved"), steps=3, lr=1e-2
        )
    )
    assert out.kind == "causal_lm" and 0.0 < out.teacher_fraction < 1.0
    moved = AutoModelForCausalLM.from_pretrained(str(tmp_path / "moved"))
    original = AutoModelForCausalLM.from_pretrained(str(student))
    assert any(not torch.equal(a, b) for a, b in zip(moved.parameters(), original.parameters(), strict=True))


@pytest.mark.slow
def test_checkpoints_with_different_tokenizers_are_rejected(tmp_path: Path, tiny_lm_pair: tuple[Path, Path]) -> None:
    import shutil

    from transformers import AutoTokenizer

    student, teacher = tiny_lm_pair
    other = tmp_path / "other"
    shutil.copytree(teacher, other)
    tokenizer = AutoTokenizer.from_pretrained(str(other))
    tokenizer.add_tokens(["<extra_token>"])
    tokenizer.save_pretrained(str(other))
    texts = tmp_path / "t.txt"
    texts.write_text("theorem t : True := trivial\n")
    args = KnowledgeTransferInput(student=str(student), teacher=str(other), data=str(texts), out=str(tmp_path / "o"))
    with pytest.raises(ToolError, match="different tokenizers"):
        knowledge_transfer(args)
