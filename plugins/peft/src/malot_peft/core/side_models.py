"""The argument and result fields the three side-tuning tools (``ladder_side_tune``, ``unipt``, ``sherl``) share.

Light on purpose (pydantic only): the tool modules import it at registration time; the training code in
:mod:`malot_peft.core.side` (torch) is imported only when a tool runs.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = ["SideTuneArgs", "SideTuneReport"]


class SideTuneArgs(BaseModel):
    """Training arguments every side-tuning tool takes (each tool adds ``out`` and its own settings)."""

    model: str = Field(description="Hugging Face causal-LM folder laid out like Llama (the frozen backbone)")
    data: str = Field(description="training texts: .txt (one a line) or .jsonl")
    steps: int = Field(default=100, ge=0)
    lr: float = Field(default=3e-3, gt=0)
    batch_size: int = Field(default=8, gt=0)
    max_length: int = Field(default=64, gt=1)
    seed: int = 0


class SideTuneReport(BaseModel):
    """What every side-tuning tool reports: sizes, the frozen-backbone checks and the memory comparison."""

    trainable_params: int
    backbone_params: int
    backbone_bit_identical: bool
    no_backbone_gradient: bool = Field(description="no backbone weight got a gradient (hooks on every layer)")
    activation_bytes_side: int = Field(description="bytes autograd saved for one training batch (this method)")
    activation_bytes_full_ft: int = Field(description="the same for full fine-tuning of the backbone")
    loss_first: float | None
    loss_last: float | None

    @staticmethod
    def fields_of(result: Any) -> dict[str, Any]:
        """These fields from a :class:`~malot_peft.core.side.SideToolResult`."""
        losses = result.run.losses
        return {
            "trainable_params": result.trainable,
            "backbone_params": result.backbone_params,
            "backbone_bit_identical": result.run.backbone_bit_identical,
            "no_backbone_gradient": result.run.no_backbone_gradient,
            "activation_bytes_side": result.side_bytes,
            "activation_bytes_full_ft": result.full_bytes,
            "loss_first": losses[0] if losses else None,
            "loss_last": losses[-1] if losses else None,
        }
