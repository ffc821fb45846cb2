"""Fantastic Gains (Roth et al., ICLR 2024): general knowledge transfer by data-partitioning distillation.

*Fantastic Gains and Where to Find Them: On the Existence and Prospect of General Knowledge Transfer between Any
Pretrained Model.* Plain KD from an arbitrary (possibly weaker) teacher overwrites what the student already knew.
The paper's KL+DP transfer instead partitions the data per sample: where the teacher is more confident in the true
class than the *frozen initial student* (``p_t(y|x) > p_{s0}(y|x)``; unsupervised: ``max_c p_t > max_c p_{s0}``), the
student is distilled towards the teacher; everywhere else it is distilled towards its own initial self, which keeps
its prior knowledge. The loss per sample is ``T² · KL(q^T ‖ p_s^T)`` with ``q`` the chosen target (the paper's KL+DP).

Properties checked by the tests: the two partitions are complementary (every sample has exactly one target), and when
the teacher equals the student the loss and its gradient are zero, so the student does not change.

For causal LMs every next-token position is a sample (the "true class" is the next token), which lets the tool move
knowledge between two prover checkpoints sharing a tokenizer. Paper: the partition rule and loss. Library: PyTorch
(autograd, Adam) and transformers for loading the checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_distill.core.kd import soft_kl
from malot_distill.core.train import fit, frozen_copy

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "KnowledgeTransferInput",
    "KnowledgeTransferOutput",
    "TransferResult",
    "dp_kd_loss",
    "knowledge_transfer",
    "partition",
    "transfer",
]

_PAPER = (
    "Roth et al., ICLR 2024: Fantastic Gains and Where to Find Them: On the Existence and Prospect of General "
    "Knowledge Transfer between Any Pretrained Model"
)


def partition(
    teacher_logits: torch.Tensor, initial_logits: torch.Tensor, labels: torch.Tensor | None = None
) -> torch.Tensor:
    """Boolean mask of the samples distilled from the teacher (the rest use the frozen initial student).

    Supervised: the teacher's probability of the true label beats the initial student's. Unsupervised
    (``labels=None``): the teacher's top probability beats the initial student's top probability.
    """
    import torch

    with torch.no_grad():
        p_t = torch.softmax(teacher_logits.float(), dim=-1)
        p_0 = torch.softmax(initial_logits.float(), dim=-1)
        if labels is None:
            return p_t.max(-1).values > p_0.max(-1).values
        index = labels.clamp_min(0).unsqueeze(-1)
        return p_t.gather(-1, index).squeeze(-1) > p_0.gather(-1, index).squeeze(-1)


def dp_kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    initial_logits: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    temperature: float = 1.0,
    valid: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The KL+DP loss: mean over valid samples of ``T²·KL(target^T ‖ student^T)``; returns ``(loss, from_teacher)``.

    ``valid`` masks out positions without a sample (padding in a text batch).
    """
    import torch

    from_teacher = partition(teacher_logits, initial_logits, labels)
    target = torch.where(from_teacher.unsqueeze(-1), teacher_logits, initial_logits).detach()
    per_sample = soft_kl(student_logits, target, temperature)
    if valid is None:
        return per_sample.mean(), from_teacher
    weight = valid.float()
    return (per_sample * weight).sum() / weight.sum().clamp_min(1.0), from_teacher & valid


@dataclass
class TransferResult:
    """Loss per step and, per step, the fraction of samples distilled from the teacher."""

    losses: list[float] = field(default_factory=list)
    teacher_fractions: list[float] = field(default_factory=list)


Batch = tuple["torch.Tensor", "torch.Tensor | None", "torch.Tensor | None"]
"""One training batch: model inputs, labels (or None for unsupervised transfer), validity mask (or None)."""


def transfer(
    student: nn.Module,
    teacher: nn.Module,
    batch_fn: Callable[[int], Batch],
    logits_fn: Callable[[nn.Module, torch.Tensor], torch.Tensor],
    *,
    steps: int,
    lr: float,
    temperature: float = 1.0,
    unsupervised: bool = False,
) -> TransferResult:
    """Train ``student`` in place by KL+DP transfer from ``teacher`` (frozen) and its own frozen initial copy.

    ``batch_fn(step)`` gives a batch; ``logits_fn(model, inputs)`` the logits aligned with the batch's labels.
    """
    import torch

    initial = frozen_copy(student)
    teacher = teacher.eval()
    result = TransferResult()

    def loss_fn(step: int) -> torch.Tensor:
        inputs, labels, valid = batch_fn(step)
        with torch.no_grad():
            t_logits = logits_fn(teacher, inputs)
            s0_logits = logits_fn(initial, inputs)
        s_logits = logits_fn(student, inputs)
        loss, chosen = dp_kd_loss(
            s_logits, t_logits, s0_logits, None if unsupervised else labels, temperature=temperature, valid=valid
        )
        count = valid.sum() if valid is not None else torch.tensor(chosen.numel())
        result.teacher_fractions.append(float(chosen.sum()) / max(float(count), 1.0))
        return loss

    student.train()
    result.losses = fit(student.parameters(), loss_fn, steps=steps, lr=lr)
    student.eval()
    return result


class KnowledgeTransferInput(BaseModel):
    """Arguments of the ``knowledge_transfer`` tool."""

    student: str = Field(description="student: a distill MLP .safetensors file or a Hugging Face causal-LM folder")
    teacher: str = Field(description="teacher of the same kind (same classes / same tokenizer)")
    data: str = Field(description="MLP: .safetensors with x (N×D) and y (N); LM: .txt or .jsonl texts")
    out: str = Field(description="where to write the transferred student (.safetensors file or model folder)")
    steps: int = Field(default=100, ge=1)
    lr: float = Field(default=1e-3, gt=0)
    temperature: float = Field(default=1.0, gt=0)
    unsupervised: bool = Field(default=False, description="partition by top confidence instead of the true label")
    batch_size: int = Field(default=32, ge=1)
    max_length: int = Field(default=64, ge=2, description="LM only: tokens per text")
    seed: int = 0


class KnowledgeTransferOutput(BaseModel):
    """Result of ``knowledge_transfer``."""

    out: str
    kind: str = Field(description="'mlp' or 'causal_lm'")
    teacher_fraction: float = Field(description="mean fraction of samples distilled from the teacher")
    loss_first: float
    loss_last: float
    student_accuracy_before: float | None = Field(description="MLP: on x_test/y_test if given, else on x/y")
    student_accuracy_after: float | None
    teacher_accuracy: float | None


def _mlp_transfer(args: KnowledgeTransferInput) -> KnowledgeTransferOutput:
    from malot_distill.core.data import check_labels, load_tensors, require
    from malot_distill.core.mlp import load_mlp, save_mlp
    from malot_distill.core.train import accuracy, batches

    student, teacher = load_mlp(args.student), load_mlp(args.teacher)
    s_sizes, t_sizes = getattr(student, "sizes", []), getattr(teacher, "sizes", [])
    if s_sizes[0] != t_sizes[0] or s_sizes[-1] != t_sizes[-1]:
        raise ToolError(
            f"student (sizes {s_sizes}) and teacher (sizes {t_sizes}) disagree on input width or class count",
            hint="transfer between models of the same task",
        )
    tensors = load_tensors(args.data)
    x = require(tensors, "x", dim=2)
    y = check_labels(x, require(tensors, "y"), s_sizes[-1])
    if x.shape[1] != s_sizes[0]:
        raise ToolError(f"data has {x.shape[1]} features, the models take {s_sizes[0]}")
    x_eval, y_eval = x, y
    if "x_test" in tensors:
        x_eval = require(tensors, "x_test", dim=2)
        y_eval = check_labels(x_eval, require(tensors, "y_test"), s_sizes[-1])
    before = accuracy(student, x_eval, y_eval)
    order = batches(x.shape[0], args.batch_size, args.steps, args.seed)

    def batch_fn(step: int) -> Batch:
        idx = order[step]
        return x[idx], y[idx], None

    result = transfer(
        student,
        teacher,
        batch_fn,
        lambda m, inp: m(inp),
        steps=args.steps,
        lr=args.lr,
        temperature=args.temperature,
        unsupervised=args.unsupervised,
    )
    save_mlp(student, args.out)
    return KnowledgeTransferOutput(
        out=str(args.out),
        kind="mlp",
        teacher_fraction=sum(result.teacher_fractions) / len(result.teacher_fractions),
        loss_first=result.losses[0],
        loss_last=result.losses[-1],
        student_accuracy_before=before,
        student_accuracy_after=accuracy(student, x_eval, y_eval),
        teacher_accuracy=accuracy(teacher, x_eval, y_eval),
    )


def lm_logits(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """Next-token logits of a causal LM for ``inputs = stack(input_ids, attention_mask)``, aligned with targets."""
    out = model(input_ids=inputs[0], attention_mask=inputs[1])
    logits: torch.Tensor = out.logits[:, :-1]
    return logits


def _lm_transfer(args: KnowledgeTransferInput) -> KnowledgeTransferOutput:
    import torch

    from malot_distill.core.causal_lm import load_causal_lm, load_texts, load_tokenizer, next_token_batch

    student, teacher = load_causal_lm(args.student), load_causal_lm(args.teacher)
    tok_s, tok_t = load_tokenizer(args.student), load_tokenizer(args.teacher)
    if tok_s.get_vocab() != tok_t.get_vocab():
        raise ToolError(
            "student and teacher use different tokenizers",
            hint="token-level transfer needs checkpoints of one model family sharing a vocabulary",
        )
    s_vocab = student.get_output_embeddings().weight.shape[0]  # type: ignore[operator]
    t_vocab = teacher.get_output_embeddings().weight.shape[0]  # type: ignore[operator]
    if s_vocab != t_vocab:
        raise ToolError(f"student has {s_vocab} output tokens, teacher {t_vocab}", hint="use matching checkpoints")
    texts = load_texts(args.data)
    gen = torch.Generator().manual_seed(args.seed)

    def batch_fn(step: int) -> Batch:
        pick = torch.randint(len(texts), (min(args.batch_size, len(texts)),), generator=gen).tolist()
        ids, mask, targets = next_token_batch(tok_s, [texts[i] for i in pick], args.max_length)
        return torch.stack([ids, mask]), targets, targets != -100

    result = transfer(
        student,
        teacher,
        batch_fn,
        lm_logits,
        steps=args.steps,
        lr=args.lr,
        temperature=args.temperature,
        unsupervised=args.unsupervised,
    )
    out = Path(args.out)
    student.save_pretrained(str(out))  # type: ignore[operator]
    tok_s.save_pretrained(str(out))
    return KnowledgeTransferOutput(
        out=str(out),
        kind="causal_lm",
        teacher_fraction=sum(result.teacher_fractions) / len(result.teacher_fractions),
        loss_first=result.losses[0],
        loss_last=result.losses[-1],
        student_accuracy_before=None,
        student_accuracy_after=None,
        teacher_accuracy=None,
    )


@tool(
    name="knowledge_transfer",
    family="distill",
    paper=_PAPER,
    tags=("distillation", "transfer", "checkpoints", "needs:student", "needs:teacher", "needs:data"),
    heavy=True,
)
def knowledge_transfer(args: KnowledgeTransferInput) -> KnowledgeTransferOutput:
    """Move knowledge from any teacher into a student without losing the student's own (Fantastic Gains KL+DP).

    Per sample, distil from the teacher where it is more confident in the true label (or, unsupervised, more
    confident at all) than the frozen initial student, else from the initial student. Works on distill MLP files
    and on two Hugging Face causal LMs sharing a tokenizer (e.g. two prover checkpoints).
    """
    from malot_distill.core.causal_lm import is_model_folder

    lm_student, lm_teacher = is_model_folder(args.student), is_model_folder(args.teacher)
    if lm_student != lm_teacher:
        raise ToolError(
            "student and teacher are of different kinds (one model folder, one MLP file)",
            hint="pass two Hugging Face folders or two distill MLP files",
        )
    return _lm_transfer(args) if lm_student else _mlp_transfer(args)
