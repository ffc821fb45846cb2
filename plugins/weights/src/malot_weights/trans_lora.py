"""Trans-LoRA: towards data-free transferable parameter-efficient fine-tuning (Wang et al., NeurIPS 2024).

A LoRA trained on an old base model is moved to a new base model without the original task data, by distillation
on synthetic data:

1. the old base model, prompted with a few real task prompts, writes synthetic ones, and a **discriminator** (old
   base + a fresh LoRA + a linear head) learns to tell the real prompts from them;
2. the new base model, prompted the same way, writes candidate prompts for the transfer; only those the
   discriminator judges *real* are kept (rejection sampling, in rounds, until enough pass), which brings the
   synthetic distribution close to the task's;
3. the **teacher** (old base + its LoRA) answers the kept prompts, and a fresh **student** LoRA on the new base is
   trained to match it: on its next-token distributions when the vocabularies agree, else on its answers.

Everything runs on Hugging Face causal LMs; LoRA files use the PEFT layout (``base_model.model.<module>.lora_A/B``,
scale folded into ``B``), so :func:`malot_weights.core.merge_lora` can merge the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool
from malot_weights.tool_io import load_weights, save_weights

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "LoraLayer",
    "TransLoraConfig",
    "TransLoraInput",
    "TransLoraOutput",
    "TransLoraReport",
    "add_lora",
    "distill_student",
    "generate_synthetic_prompts",
    "load_lora",
    "lora_tensors",
    "train_discriminator",
    "trans_lora",
    "trans_lora_tool",
]

_PREFIX = "base_model.model."


class LoraLayer(Protocol):
    """What a LoRA-wrapped linear exposes: ``y = base(x) + scale · x Aᵀ Bᵀ``."""

    lora_a: torch.Tensor
    lora_b: torch.Tensor
    scale: float


# --- LoRA layers -------------------------------------------------------------------------------------------------


def _lora_linear(base: nn.Linear, rank: int, alpha: float, generator: torch.Generator | None) -> nn.Module:
    import torch
    from torch import nn

    class _LoraLinear(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.base = base
            for p in self.base.parameters():
                p.requires_grad_(False)
            bound = (1.0 / base.in_features) ** 0.5
            a = (torch.rand(rank, base.in_features, generator=generator) * 2 - 1) * bound
            self.lora_a = nn.Parameter(a)
            self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))
            self.scale = alpha / rank

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.base(x) + self.scale * ((x @ self.lora_a.T) @ self.lora_b.T)
            return out

    return _LoraLinear()


def add_lora(
    model: nn.Module, targets: Sequence[str], *, rank: int, alpha: float | None = None, seed: int = 0
) -> dict[str, LoraLayer]:
    """Wrap every ``nn.Linear`` whose name ends with one of ``targets`` in a LoRA layer; freeze all base weights.

    ``B`` starts at zero, so the model computes exactly what it did before. Returns the wrappers by module name.
    """
    import torch
    from torch import nn

    for p in model.parameters():
        p.requires_grad_(False)
    generator = torch.Generator().manual_seed(seed)
    chosen = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and any(name == t or name.endswith("." + t) for t in targets)
    ]
    if not chosen:
        raise ToolError(f"no nn.Linear module matches LoRA targets {list(targets)}", hint="e.g. q_proj, v_proj")
    wrappers: dict[str, LoraLayer] = {}
    for name, module in chosen:
        assert isinstance(module, nn.Linear)
        wrapper = _lora_linear(module, rank, alpha if alpha is not None else float(rank), generator)
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, wrapper)
        wrappers[name] = cast(LoraLayer, wrapper)
    return wrappers


def lora_tensors(wrappers: dict[str, LoraLayer]) -> dict[str, torch.Tensor]:
    """The adapters as PEFT-layout tensors (scale folded into ``B``)."""
    out: dict[str, torch.Tensor] = {}
    for name, w in wrappers.items():
        out[f"{_PREFIX}{name}.lora_A.weight"] = w.lora_a.detach().clone()
        out[f"{_PREFIX}{name}.lora_B.weight"] = (w.lora_b.detach() * w.scale).clone()
    return out


def load_lora(model: nn.Module, tensors: dict[str, torch.Tensor]) -> dict[str, LoraLayer]:
    """Attach a PEFT-layout adapter to ``model`` (wrapping the adapted linears) and return the wrappers."""
    import torch

    from malot_weights.core.lora import lora_targets

    pairs = lora_targets(tensors, [n for n, _ in model.named_parameters()])
    wrappers: dict[str, LoraLayer] = {}
    for weight_name, pair in pairs.items():
        module_name = weight_name.removesuffix(".weight")
        rank = int(pair.a.shape[0])
        wrapper = add_lora(model, [module_name], rank=rank, alpha=float(rank))[module_name]
        with torch.no_grad():
            wrapper.lora_a.copy_(pair.a)
            wrapper.lora_b.copy_(pair.b * pair.scale)
        wrappers[module_name] = wrapper
    for p in model.parameters():
        p.requires_grad_(False)
    return wrappers


# --- text helpers ------------------------------------------------------------------------------------------------


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _separator(tokenizer: Any) -> int:
    sep = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    if sep is None:
        raise ToolError("the tokenizer has no eos or sep token to separate examples")
    return int(sep)


def _continue(
    model: nn.Module, ids: list[int], *, stop: int, max_new_tokens: int, temperature: float, generator: torch.Generator
) -> list[int]:
    """Sample (or greedily decode, temperature 0) up to ``max_new_tokens`` after ``ids``, stopping at ``stop``."""
    import torch

    out: list[int] = []
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits = model(input_ids=torch.tensor([ids + out])).logits[0, -1].float()
            if temperature <= 0:
                token = int(logits.argmax())
            else:
                token = int(torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=generator))
            if token == stop:
                break
            out.append(token)
    return out


def generate_synthetic_prompts(
    teacher: nn.Module,
    tokenizer: Any,
    real_prompts: Sequence[str],
    n: int,
    *,
    few_shot: int = 3,
    max_new_tokens: int = 24,
    temperature: float = 1.0,
    seed: int = 0,
) -> list[str]:
    """``n`` new prompts written by the teacher, each after ``few_shot`` random real prompts (separator-joined)."""
    import torch

    sep = _separator(tokenizer)
    generator = torch.Generator().manual_seed(seed)
    real_ids = [_ids(tokenizer, p) for p in real_prompts]
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    teacher.eval()
    prompts: list[str] = []
    attempts = 0
    while len(prompts) < n and attempts < 4 * n:
        attempts += 1
        picks = torch.randperm(len(real_ids), generator=generator)[:few_shot].tolist()
        context = list(bos)
        for i in picks:
            context += real_ids[i] + [sep]
        new = _continue(
            teacher, context, stop=sep, max_new_tokens=max_new_tokens, temperature=temperature, generator=generator
        )
        text = tokenizer.decode(new, skip_special_tokens=True).strip()
        if text:
            prompts.append(text)
    return prompts


# --- discriminator -----------------------------------------------------------------------------------------------


@dataclass
class Discriminator:
    """Old base + a LoRA + a linear head on the mean last hidden state: ``score(texts)`` is P(real)."""

    model: nn.Module
    head: nn.Module
    tokenizer: Any
    max_length: int
    accuracy: float = 0.0

    def logits(self, texts: Sequence[str]) -> torch.Tensor:
        """Real-vs-synthetic logits of ``texts``."""
        enc = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
            add_special_tokens=False,
        )
        hidden = self.model(
            input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], output_hidden_states=True
        ).hidden_states[-1]
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1)
        out: torch.Tensor = self.head(pooled).squeeze(-1)
        return out

    def score(self, texts: Sequence[str]) -> list[float]:
        """P(real) for each text."""
        import torch

        with torch.no_grad():
            return [float(p) for p in torch.sigmoid(self.logits(texts))]


def train_discriminator(
    base: nn.Module,
    tokenizer: Any,
    real: Sequence[str],
    synthetic: Sequence[str],
    *,
    steps: int,
    lr: float = 5e-3,
    rank: int = 4,
    targets: Sequence[str] = ("q_proj", "v_proj"),
    max_length: int = 64,
    seed: int = 0,
) -> Discriminator:
    """Train the real-vs-synthetic discriminator on balanced batches (LoRA on ``base`` plus a linear head)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    if not real or not synthetic:
        raise ToolError("the discriminator needs both real and synthetic prompts")
    torch.manual_seed(seed)
    wrappers = add_lora(base, targets, rank=rank, seed=seed)
    hidden = int(cast(Any, base).config.hidden_size)
    head = nn.Linear(hidden, 1)
    disc = Discriminator(model=base, head=head, tokenizer=tokenizer, max_length=max_length)
    params = [p for w in wrappers.values() for p in (w.lora_a, w.lora_b)] + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=lr)
    texts = [*real, *synthetic]
    labels = torch.tensor([1.0] * len(real) + [0.0] * len(synthetic))
    weights = torch.where(labels > 0, 0.5 / len(real), 0.5 / len(synthetic))
    base.train()
    for _ in range(steps):
        loss = (F.binary_cross_entropy_with_logits(disc.logits(texts), labels, reduction="none") * weights).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
    base.eval()
    scores = torch.tensor(disc.score(texts))
    disc.accuracy = float(((scores >= 0.5).float() == labels).float().mean())
    return disc


# --- distillation ------------------------------------------------------------------------------------------------


def _pair_ids(tokenizer: Any, prompt: str, completion: list[int] | str) -> tuple[list[int], int]:
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    prompt_ids = bos + _ids(tokenizer, prompt) + [_separator(tokenizer)]
    tail = _ids(tokenizer, completion) if isinstance(completion, str) else completion
    return prompt_ids + tail + [_separator(tokenizer)], len(prompt_ids)


def _same_vocab(a: Any, b: Any) -> bool:
    return bool(a.get_vocab() == b.get_vocab())


def distill_student(
    student: nn.Module,
    student_tokenizer: Any,
    teacher: nn.Module,
    teacher_tokenizer: Any,
    prompts: Sequence[str],
    *,
    steps: int,
    lr: float = 5e-3,
    max_new_tokens: int = 16,
    mode: Literal["auto", "logits", "sequence"] = "auto",
    seed: int = 0,
) -> tuple[list[float], str]:
    """Train the student's LoRA parameters to match the teacher on ``prompts``; returns (losses, mode used).

    The teacher answers each prompt greedily (prompt, separator, answer, separator — the task data format).
    ``logits`` mode minimises KL(teacher ‖ student) over the answer positions (needs one vocabulary);
    ``sequence`` mode minimises the student's cross-entropy on the teacher's answer text.
    """
    import torch
    import torch.nn.functional as F

    if not prompts:
        raise ToolError("no prompts to distil on", hint="lower the discriminator threshold or generate more")
    used = mode if mode != "auto" else ("logits" if _same_vocab(student_tokenizer, teacher_tokenizer) else "sequence")
    if used == "logits" and not _same_vocab(student_tokenizer, teacher_tokenizer):
        raise ToolError("logit distillation needs the same vocabulary", hint="use mode='sequence'")
    generator = torch.Generator().manual_seed(seed)
    teacher.eval()
    examples: list[tuple[list[int], int, torch.Tensor | None]] = []
    for prompt in prompts:
        t_ids, _ = _pair_ids(teacher_tokenizer, prompt, [])
        answer = _continue(
            teacher,
            t_ids[:-1],
            stop=_separator(teacher_tokenizer),
            max_new_tokens=max_new_tokens,
            temperature=0.0,
            generator=generator,
        )
        if used == "logits":
            ids, start = _pair_ids(student_tokenizer, prompt, answer)
            with torch.no_grad():
                target = F.log_softmax(teacher(input_ids=torch.tensor([ids])).logits[0].float(), -1)
            examples.append((ids, start, target))
        else:
            text = teacher_tokenizer.decode(answer, skip_special_tokens=True)
            ids, start = _pair_ids(student_tokenizer, prompt, text)
            examples.append((ids, start, None))
    params = [p for p in student.parameters() if p.requires_grad]
    if not params:
        raise ToolError("the student has no trainable parameters", hint="add a LoRA first (add_lora)")
    optimizer = torch.optim.AdamW(params, lr=lr)
    student.train()
    losses: list[float] = []
    for step in range(steps):
        ids, start, soft = examples[step % len(examples)]
        logits = student(input_ids=torch.tensor([ids])).logits[0].float()
        # predictions for the answer and the closing separator: positions start-1 .. len-2
        span = slice(start - 1, len(ids) - 1)
        if soft is not None:
            loss = F.kl_div(F.log_softmax(logits[span], -1), soft[span], log_target=True, reduction="batchmean")
        else:
            loss = F.cross_entropy(logits[span], torch.tensor(ids[start:]))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        losses.append(float(loss.detach()))
    student.eval()
    return losses, used


# --- the whole pipeline ------------------------------------------------------------------------------------------


@dataclass
class TransLoraConfig:
    """Sizes and lengths of one Trans-LoRA transfer."""

    rank: int = 8
    targets: tuple[str, ...] = ("q_proj", "v_proj")
    few_shot: int = 3
    n_discriminator: int = 32
    n_candidates: int = 64
    n_kept: int = 32
    max_rounds: int = 4
    threshold: float = 0.5
    min_kept: int = 4
    max_new_tokens: int = 24
    temperature: float = 1.0
    discriminator_steps: int = 60
    student_steps: int = 200
    lr: float = 5e-3
    kd_mode: Literal["auto", "logits", "sequence"] = "auto"
    filter: bool = True
    seed: int = 0


@dataclass
class TransLoraReport:
    """What happened during a transfer."""

    synthetic_for_discriminator: int
    candidates: int
    kept: int
    discriminator_accuracy: float | None
    kept_prompts: list[str] = field(default_factory=list)
    kept_scores: list[float] = field(default_factory=list)  # the discriminator's P(real) of each kept prompt
    student_losses: list[float] = field(default_factory=list)
    kd_mode: str = ""


def trans_lora(
    old_base: nn.Module,
    old_lora: dict[str, torch.Tensor],
    tokenizer: Any,
    new_base: nn.Module,
    new_tokenizer: Any,
    real_prompts: Sequence[str],
    config: TransLoraConfig,
    *,
    discriminator_base: nn.Module | None = None,
) -> tuple[dict[str, torch.Tensor], TransLoraReport]:
    """Move ``old_lora`` from ``old_base`` to ``new_base``; returns the new adapter (PEFT layout) and a report.

    Follows the paper's division of labour: the *source* base model (``discriminator_base``, a plain copy of the old
    base, needed when ``config.filter``) writes the synthetic prompts the discriminator learns from and then becomes
    the discriminator (with its own LoRA); the *target* base model ``new_base`` writes the candidate prompts for
    the transfer, which the discriminator filters; ``old_base`` with ``old_lora`` attached is the teacher, and
    ``new_base`` finally gets the student LoRA.
    """
    load_lora(old_base, old_lora)
    teacher = old_base
    seed = config.seed

    def candidates_from_target(count: int, round_seed: int) -> list[str]:
        return generate_synthetic_prompts(
            new_base,
            new_tokenizer,
            real_prompts,
            count,
            few_shot=config.few_shot,
            max_new_tokens=config.max_new_tokens,
            temperature=config.temperature,
            seed=round_seed,
        )

    disc_accuracy: float | None = None
    candidates: list[str] = []
    kept_scores: list[float] = []
    n_first = 0
    if config.filter:
        if discriminator_base is None:
            raise ToolError("filtering needs a plain copy of the old base (discriminator_base)")
        first = generate_synthetic_prompts(
            discriminator_base,
            tokenizer,
            real_prompts,
            config.n_discriminator,
            few_shot=config.few_shot,
            max_new_tokens=config.max_new_tokens,
            temperature=config.temperature,
            seed=seed,
        )
        n_first = len(first)
        disc = train_discriminator(
            discriminator_base,
            tokenizer,
            real_prompts,
            first,
            steps=config.discriminator_steps,
            lr=config.lr,
            targets=config.targets,
            seed=seed,
        )
        disc_accuracy = disc.accuracy
        # generate rounds of candidates until enough pass the filter (rejection sampling); if too few pass, fall
        # back to the best-scored ``min_kept``
        scored: list[tuple[float, str]] = []
        for round_index in range(config.max_rounds):
            batch = candidates_from_target(config.n_candidates, seed + 1 + round_index)
            candidates.extend(batch)
            scored.extend(zip(disc.score(batch) if batch else [], batch, strict=True))
            if sum(score >= config.threshold for score, _ in scored) >= config.n_kept:
                break
        # accepted samples in generation order (ranking them by score would trade diversity for realism)
        accepted = [(score, text) for score, text in scored if score >= config.threshold][: config.n_kept]
        if len(accepted) < config.min_kept:
            accepted = sorted(scored, key=lambda pair: -pair[0])[: config.min_kept]
        kept = [text for _, text in accepted]
        kept_scores = [score for score, _ in accepted]
    else:
        candidates = candidates_from_target(config.n_candidates, seed + 1)
        kept = list(candidates)
    wrappers = add_lora(new_base, config.targets, rank=config.rank, seed=seed)
    losses, mode = distill_student(
        new_base,
        new_tokenizer,
        teacher,
        tokenizer,
        kept,
        steps=config.student_steps,
        lr=config.lr,
        max_new_tokens=config.max_new_tokens,
        mode=config.kd_mode,
        seed=seed,
    )
    report = TransLoraReport(
        synthetic_for_discriminator=n_first,
        candidates=len(candidates),
        kept=len(kept),
        discriminator_accuracy=disc_accuracy,
        kept_prompts=kept,
        kept_scores=kept_scores,
        student_losses=losses,
        kd_mode=mode,
    )
    return lora_tensors(wrappers), report


_PAPER = "Trans-LoRA: towards data-free Transferable Parameter Efficient Finetuning (Wang et al., NeurIPS 2024)"


class TransLoraInput(BaseModel):
    """Arguments of the ``trans_lora`` tool."""

    old_base: str = Field(description="Hugging Face folder of the model the LoRA was trained on")
    lora: str = Field(description="the LoRA (PEFT-layout safetensors: adapter_model.safetensors or a folder)")
    new_base: str = Field(description="Hugging Face folder of the model to move the LoRA to")
    data: str = Field(description="a few real task prompts: .jsonl with 'prompt' (or 'text'), or one per line")
    out: str = Field(description="output adapter .safetensors (PEFT layout, for the new base)")
    rank: int = Field(default=8, gt=0)
    targets: list[str] = Field(default_factory=lambda: ["q_proj", "v_proj"])
    n_candidates: int = Field(default=64, gt=0, description="synthetic prompts generated per filtering round")
    n_kept: int = Field(default=32, gt=0, description="stop generating once this many candidates pass the filter")
    max_rounds: int = Field(default=4, gt=0, description="most rounds of candidate generation")
    n_discriminator: int = Field(default=32, gt=0, description="synthetic prompts used to train the discriminator")
    threshold: float = Field(default=0.5, ge=0, le=1, description="keep candidates with P(real) at least this")
    filter: bool = Field(default=True, description="use the discriminator filter (the paper's method)")
    discriminator_steps: int = Field(default=60, ge=0)
    student_steps: int = Field(default=200, ge=0)
    max_new_tokens: int = Field(default=24, gt=0)
    lr: float = Field(default=5e-3, gt=0)
    seed: int = 0


class TransLoraOutput(BaseModel):
    """Result of the ``trans_lora`` tool."""

    out: str
    candidates: int
    kept: int
    discriminator_accuracy: float | None
    kd_mode: str
    student_loss_first: float | None
    student_loss_last: float | None


def _real_prompts(path: str) -> list[str]:
    import json
    from pathlib import Path

    file = Path(path)
    if not file.is_file():
        raise ToolError(f"task data {file} does not exist")
    prompts = []
    for line in file.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        if file.suffix == ".jsonl":
            record = json.loads(line)
            prompts.append(str(record.get("prompt", record.get("text", ""))))
        else:
            prompts.append(line.strip())
    prompts = [p for p in prompts if p]
    if not prompts:
        raise ToolError(f"task data {file} holds no prompts")
    return prompts


@tool(name="trans_lora", family="weights", paper=_PAPER, tags=("lora", "transfer", "distillation"), heavy=True)
def trans_lora_tool(args: TransLoraInput) -> TransLoraOutput:
    """Move a LoRA to a new base model by distillation on discriminator-filtered synthetic data (Trans-LoRA).

    Needs only a few real task prompts: the base models write synthetic prompts, a discriminator keeps the
    realistic ones, and a new LoRA on the new base learns to match the old base + LoRA's answers.
    """
    import torch

    from malot_weights.causal_lm import load_causal_lm, load_tokenizer

    torch.manual_seed(args.seed)
    config = TransLoraConfig(
        rank=args.rank,
        targets=tuple(args.targets),
        n_discriminator=args.n_discriminator,
        n_candidates=args.n_candidates,
        n_kept=args.n_kept,
        max_rounds=args.max_rounds,
        threshold=args.threshold,
        max_new_tokens=args.max_new_tokens,
        discriminator_steps=args.discriminator_steps,
        student_steps=args.student_steps,
        lr=args.lr,
        filter=args.filter,
        seed=args.seed,
    )
    adapter, report = trans_lora(
        load_causal_lm(args.old_base),
        load_weights(args.lora),
        load_tokenizer(args.old_base),
        load_causal_lm(args.new_base),
        load_tokenizer(args.new_base),
        _real_prompts(args.data),
        config,
        discriminator_base=load_causal_lm(args.old_base) if args.filter else None,
    )
    path = save_weights(adapter, args.out, metadata={"format": "pt", "rank": str(args.rank)})
    return TransLoraOutput(
        out=str(path),
        candidates=report.candidates,
        kept=report.kept,
        discriminator_accuracy=report.discriminator_accuracy,
        kd_mode=report.kd_mode,
        student_loss_first=report.student_losses[0] if report.student_losses else None,
        student_loss_last=report.student_losses[-1] if report.student_losses else None,
    )
