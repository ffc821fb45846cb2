"""Knowledge-distillation losses shared by the distill tools (per-sample, so tools can weight or partition them).

All losses take logits. ``soft_kl`` is Hinton et al.'s temperature-scaled KD term ``T² · KL(p_t^T ‖ p_s^T)``: it is
exactly zero when the teacher's logits equal the student's, and with a one-hot teacher distribution at ``T = 1``
``soft_cross_entropy`` is plain cross-entropy. torchdistill's ``KDLoss`` computes the same batch-mean term; it is not
used because installing torchdistill pulls torchvision (and with it another torch), see the plugin README.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from malot.errors import ToolError

if TYPE_CHECKING:
    import torch

__all__ = ["check_finite", "feature_l2", "soft_cross_entropy", "soft_kl"]


def check_finite(name: str, tensor: torch.Tensor) -> None:
    """Raise :class:`ToolError` if ``tensor`` is empty or holds NaN/inf values."""
    import torch

    if tensor.numel() == 0:
        raise ToolError(f"{name} is empty", hint="pass at least one sample")
    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
        raise ToolError(f"{name} contains NaN or infinite values", hint="clean the data or lower the learning rate")


def soft_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Per-sample ``T² · KL(softmax(t/T) ‖ softmax(s/T))`` over the last dimension (shape: the leading dimensions).

    The teacher side is treated as a constant. The value and its gradient w.r.t. the student logits are exact (first
    order; no second derivatives flow through this term).
    """
    import torch.nn.functional as F

    if student_logits.shape != teacher_logits.shape:
        raise ToolError(
            f"student logits {tuple(student_logits.shape)} and teacher logits {tuple(teacher_logits.shape)} differ",
            hint="student and teacher must predict the same classes (vocabulary)",
        )
    if temperature <= 0:
        raise ToolError(f"temperature must be positive, got {temperature}")
    log_s = F.log_softmax(student_logits / temperature, dim=-1)
    log_t = F.log_softmax(teacher_logits / temperature, dim=-1).detach()
    p_t = log_t.exp()
    value = (p_t * (log_t - log_s)).sum(-1) * temperature**2
    # Autograd through log_softmax leaves a rounding-size gradient T·p_t·(Σp_t − 1) when student = teacher, which
    # Adam's normalisation blows up into a real step. Route the gradient through its closed form T·(p_s − p_t)
    # instead: the same first derivative, and exactly zero when the logits are equal.
    direction = (log_s.exp() - p_t).detach() * temperature
    surrogate = (direction * student_logits).sum(-1)
    return value.detach() + surrogate - surrogate.detach()


def soft_cross_entropy(student_logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """Per-sample ``−Σ_c q_c log softmax(s)_c``; equals ``F.cross_entropy`` when ``q`` is one-hot."""
    import torch.nn.functional as F

    return -(target_probs * F.log_softmax(student_logits, dim=-1)).sum(-1)


def feature_l2(student_features: torch.Tensor, teacher_features: torch.Tensor) -> torch.Tensor:
    """Per-sample mean squared difference of two feature vectors (zero when they are equal)."""
    if student_features.shape != teacher_features.shape:
        raise ToolError(
            f"feature shapes differ: {tuple(student_features.shape)} vs {tuple(teacher_features.shape)}",
            hint="project the student's features to the teacher's width first",
        )
    return (student_features - teacher_features).pow(2).mean(-1)
