"""``make_peft``: the unified view of parameter-efficient transfer learning (He et al., ICLR 2022).

Paper: *Towards a Unified View of Parameter-Efficient Transfer Learning* (Junxian He, Chunting Zhou, Xuezhe Ma,
Taylor Berg-Kirkpatrick, Graham Neubig). Every method is a modification ``h ← h + s·f(x W_down) W_up`` (Eq. 9-10
and Table 1) chosen along four axes: the function ``f``, the insertion form (sequential: ``x = h``; parallel:
``x`` is the sublayer input), the modified representation (attention or FFN) and the scale ``s``. Prefix tuning is
the gated parallel form of Eq. (7). The *Mix-And-Match* (MAM) adapter combines prefix tuning at attention with a
scaled parallel adapter at the FFN (the paper's best design).

What is the paper's and what the library's: the design space, the presets, the MAM combination and the closed-form
parameter counts are the paper's (written here); LoRA and prefix tuning on Hugging Face models are the ``peft``
library's modules (``LoraConfig``, ``PrefixTuningConfig``), and ``tests/test_peft_unified.py`` checks that our
unified form ``s·(x A) B`` with LoRA's weights gives ``peft``'s output. Bottleneck adapters are ours (``peft`` has
none).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool

if TYPE_CHECKING:
    import torch
    from torch import nn

    from malot_peft.core.apply import PeftHandle, PeftSpec

__all__ = ["MakePeftInput", "MakePeftOutput", "make_peft", "make_peft_model", "train_peft"]

_PAPER = "Towards a Unified View of Parameter-Efficient Transfer Learning (He et al., ICLR 2022)"


def make_peft_model(model: nn.Module, spec: PeftSpec) -> PeftHandle:
    """Freeze ``model`` and add the PEFT modules of ``spec`` (see :class:`~malot_peft.core.apply.PeftSpec`)."""
    from malot_peft.core.apply import apply_peft

    return apply_peft(model, spec)


def train_peft(handle: PeftHandle, loss_fn: object, *, steps: int, lr: float) -> tuple[list[float], bool]:
    """Train only the PEFT parameters; returns the losses and whether the backbone stayed bit-identical.

    ``loss_fn(model, step)`` returns a scalar loss for the wrapped model ``handle.model``.
    """
    from malot_peft.core.train import train_params

    if not callable(loss_fn):
        raise ToolError("loss_fn must be callable as loss_fn(model, step)")
    before = handle.backbone_snapshot()
    losses = train_params(handle.trainable.values(), lambda step: loss_fn(handle.model, step), steps=steps, lr=lr)
    return losses, handle.backbone_unchanged(before)


class MakePeftInput(BaseModel):
    """Arguments of the ``make_peft`` tool."""

    model: str = Field(description="Hugging Face causal-LM folder (the frozen backbone)")
    data: str = Field(description="training texts: .txt (one a line) or .jsonl ('text' or 'prompt'+'completion')")
    out: str = Field(description="where to write the adapter (.safetensors)")
    form: Literal["lora", "adapter", "parallel_adapter", "prefix", "mam", "custom"] = Field(
        default="mam", description="preset of the unified view (custom: give insertion, fn and targets)"
    )
    r: int = Field(default=8, gt=0, description="bottleneck size")
    scale: float | None = Field(default=None, description="s (default 1; 4 for parallel_adapter and mam)")
    insertion: Literal["parallel", "sequential"] | None = Field(default=None, description="custom form only")
    fn: Literal["identity", "relu", "tanh", "gelu"] | None = Field(default=None, description="custom form only")
    targets: list[str] | None = Field(default=None, description="module-name suffixes (default by form)")
    prefix_len: int = Field(default=8, gt=0, description="prefix vectors per layer (prefix, mam)")
    backend: Literal["peft", "unified"] = Field(default="peft", description="LoRA via peft or our unified module")
    steps: int = Field(default=100, ge=0)
    lr: float = Field(default=1e-3, gt=0)
    batch_size: int = Field(default=8, gt=0)
    max_length: int = Field(default=64, gt=1)
    seed: int = 0


class MakePeftOutput(BaseModel):
    """Result of the ``make_peft`` tool."""

    adapter: str
    form: str
    trainable_params: int = Field(description="counted from the trainable tensors")
    closed_form_params: int = Field(description="the paper's closed form for this configuration")
    backbone_params: int
    backbone_bit_identical: bool = Field(description="every backbone weight unchanged after training")
    modified_modules: list[str]
    loss_first: float | None
    loss_last: float | None


@tool(
    name="make_peft",
    family="peft",
    paper=_PAPER,
    tags=("peft", "adapter", "lora", "prefix-tuning", "fine-tuning", "few-shot"),
    heavy=True,
)
def make_peft(args: MakePeftInput) -> MakePeftOutput:
    """Add and train a unified-view PEFT module (LoRA, adapter, parallel adapter, prefix, MAM) on a frozen causal LM.

    The backbone stays bit-identical; the adapter file holds only the new parameters, whose count equals the
    paper's closed form (reported beside the count). Reload with ``malot_peft.core.apply.load_adapter``.
    """
    import torch
    from pydantic import ValidationError

    from malot_peft.core.apply import PeftSpec, save_adapter
    from malot_peft.core.lm import load_causal_lm, load_texts, load_tokenizer, next_token_loss, sample_batch

    if Path(args.out).suffix != ".safetensors":
        raise ToolError(f"out={args.out!r} must end in .safetensors", hint="e.g. --out adapter.safetensors")
    try:
        spec = PeftSpec(
            form=args.form,
            r=args.r,
            scale=args.scale,
            fn=args.fn,
            insertion=args.insertion,
            targets=args.targets,
            prefix_len=args.prefix_len,
            backend=args.backend,
        )
    except ValidationError as exc:
        raise ToolError(
            f"bad PEFT configuration: {exc.errors()[0]['msg']}", hint="see `malot tools show make_peft`"
        ) from None
    torch.manual_seed(args.seed)
    texts = load_texts(args.data)
    model = load_causal_lm(args.model)
    tokenizer = load_tokenizer(args.model)
    handle = make_peft_model(model, spec)
    order = torch.Generator().manual_seed(args.seed)

    def loss_fn(net: nn.Module, step: int) -> torch.Tensor:
        ids, mask = sample_batch(tokenizer, texts, args.batch_size, args.max_length, order)
        return next_token_loss(net(input_ids=ids, attention_mask=mask).logits, ids, mask)

    handle.model.train()
    losses, same = train_peft(handle, loss_fn, steps=args.steps, lr=args.lr)
    path = save_adapter(handle, args.out, extra={"base_model": str(Path(args.model).resolve())})
    return MakePeftOutput(
        adapter=str(path),
        form=spec.form,
        trainable_params=handle.trainable_count,
        closed_form_params=handle.closed_form,
        backbone_params=sum(int(p.numel()) for p in handle.backbone.values()),
        backbone_bit_identical=same,
        modified_modules=handle.wrapped,
        loss_first=losses[0] if losses else None,
        loss_last=losses[-1] if losses else None,
    )
