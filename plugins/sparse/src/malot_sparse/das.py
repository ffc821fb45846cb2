"""DAS: dynamic architecture skipping (Wu et al., NeurIPS 2023), for residual networks and Hugging Face decoders.

The paper's method, implemented here:

* every block (transformer layer, residual MLP block) of a frozen network is an *arm* of a k-armed bandit; each
  round samples a set of ``k`` blocks to skip (Gumbel-top-k on the arms' values ``Q / τ``), runs the network with
  those blocks replaced by lightweight adapters on a batch, and takes the reward ``r = −loss``; every sampled arm's
  value moves towards the reward, ``Q_l ← Q_l + η (r − Q_l)`` (arms that are never drawn keep ``Q_l = 0`` relative
  to the dense network's reward, which is subtracted);
* during the search the adapters of the sampled blocks take a gradient step on the same batch, so a block's value
  reflects how well an adapter can replace it;
* the ``k`` blocks with the highest values are skipped for good; each is replaced by an adapter
  ``h ← h + W_up σ(W_down h)`` (zero-initialised ``W_up``: the adapter starts as the identity), and the adapters are
  fine-tuned with the rest frozen (the parameter- and computation-efficient transfer the paper targets);
* ``adapter_dim = 0`` skips blocks with nothing in their place; for a Hugging Face decoder the result is then saved
  as a smaller ordinary checkpoint (``num_hidden_layers`` reduced) that transformers and vLLM load as is.

The bandit, the skipping and the adapters are this module's; peft is not used because the adapters *replace*
blocks rather than wrap them.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import tool

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "BanditResult",
    "DasSkipInput",
    "DasSkipOutput",
    "das_skip",
    "drop_decoder_layers",
    "finetune_adapters",
    "load_das_model",
    "make_adapters",
    "skip_bandit",
    "skipping",
]

LossFn = Callable[[int], "torch.Tensor"]
"""``loss(step)``: the training loss of the network as it currently is (some blocks maybe skipped), on a batch."""


def make_adapters(count: int, hidden: int, dim: int, seed: int = 0) -> nn.ModuleList:
    """``count`` skip adapters ``h + W_up σ(W_down h)`` (``dim = 0``: plain identity), ``W_up`` zero at the start."""
    import torch
    from torch import nn

    class SkipAdapter(nn.Module):
        """Stands in for a skipped block: takes the block's hidden states (first argument), ignores the rest."""

        def __init__(self) -> None:
            super().__init__()
            self.down = nn.Linear(hidden, dim) if dim else None
            self.up = nn.Linear(dim, hidden) if dim else None
            if self.up is not None:
                nn.init.zeros_(self.up.weight)
                nn.init.zeros_(self.up.bias)

        def forward(self, hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
            if self.down is None or self.up is None:
                return hidden_states
            out: torch.Tensor = hidden_states + self.up(torch.nn.functional.gelu(self.down(hidden_states)))
            return out

    torch.manual_seed(seed)
    return nn.ModuleList(SkipAdapter() for _ in range(count))


@contextlib.contextmanager
def skipping(blocks: nn.ModuleList, adapters: nn.ModuleList, skip: Sequence[int]) -> Iterator[None]:
    """Within the block, ``blocks[i]`` is ``adapters[i]`` for every ``i`` in ``skip``; restored afterwards."""
    originals = {i: blocks[i] for i in skip}
    try:
        for i in skip:
            blocks[i] = adapters[i]
        yield
    finally:
        for i, block in originals.items():
            blocks[i] = block


@dataclass
class BanditResult:
    """The arms' values, the chosen skip set, and the rewards of every round."""

    values: list[float]
    counts: list[int]
    skip: list[int]
    dense_reward: float
    rewards: list[float] = field(default_factory=list)


def skip_bandit(
    blocks: nn.ModuleList,
    adapters: nn.ModuleList,
    loss_fn: LossFn,
    *,
    k: int,
    rounds: int = 50,
    temperature: float = 0.05,
    step_size: float = 0.3,
    adapter_lr: float = 1e-3,
    candidates: Sequence[int] | None = None,
    seed: int = 0,
) -> BanditResult:
    """DAS's search: sample ``k``-block skip sets by Gumbel-top-k over the values, reward ``−loss``, update values.

    ``candidates`` limits which blocks may be skipped (default: all). The adapters of each sampled set take one
    Adam step per round (``adapter_lr = 0``: none). Rewards are relative to the dense network's (``−loss`` with
    nothing skipped on the first batch), so an arm whose removal costs nothing has value near 0 and the rest below.
    """
    import torch

    arms = list(candidates) if candidates is not None else list(range(len(blocks)))
    if not arms:
        raise ToolError("no block may be skipped", hint="widen the candidate layers")
    if not 0 < k <= len(arms):
        raise ToolError(f"k={k} must be between 1 and the number of candidate blocks ({len(arms)})")
    if rounds < 1:
        raise ToolError(f"the bandit needs at least one round, got {rounds}")
    generator = torch.Generator().manual_seed(seed)
    values = torch.zeros(len(blocks))
    counts = [0] * len(blocks)
    trainable = [p for p in adapters.parameters()]
    optimizer = torch.optim.Adam(trainable, lr=adapter_lr) if trainable and adapter_lr > 0 else None
    with torch.no_grad():
        dense_reward = -float(loss_fn(-1))
    rewards: list[float] = []
    arm_index = torch.tensor(arms)
    for step in range(rounds):
        gumbel = -torch.log(-torch.log(torch.rand(len(arms), generator=generator).clamp(1e-9, 1 - 1e-9)))
        picked = arm_index[(values[arm_index] / temperature + gumbel).topk(k).indices].tolist()
        with skipping(blocks, adapters, picked):
            loss = loss_fn(step)
            if optimizer is not None:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                optimizer.step()
        reward = -float(loss.detach()) - dense_reward
        rewards.append(reward)
        for i in picked:
            counts[i] += 1
            values[i] += step_size * (reward - values[i])
    order = sorted(arms, key=lambda i: (-float(values[i]) if counts[i] else float("inf"), i))
    return BanditResult(
        values=[float(v) for v in values],
        counts=counts,
        skip=sorted(order[:k]),
        dense_reward=dense_reward,
        rewards=rewards,
    )


def finetune_adapters(
    blocks: nn.ModuleList, adapters: nn.ModuleList, skip: Sequence[int], loss_fn: LossFn, *, steps: int, lr: float
) -> list[float]:
    """Train only the adapters of the skipped blocks (the rest frozen) with the skip set in place."""
    import torch

    params = [p for i in skip for p in adapters[i].parameters()]
    if steps <= 0 or not params:
        return []
    optimizer = torch.optim.Adam(params, lr=lr)
    losses: list[float] = []
    with skipping(blocks, adapters, skip):
        for step in range(steps):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(step)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            losses.append(float(loss.detach()))
    return losses


def drop_decoder_layers(model: nn.Module, skip: Sequence[int]) -> None:
    """Remove the decoder layers ``skip`` from a Hugging Face decoder in place (renumbering the rest for the cache)."""
    from torch import nn

    from malot_sparse.core.causal_lm import decoder_layers

    layers = decoder_layers(model)
    kept = [layer for i, layer in enumerate(layers) if i not in set(skip)]
    for new_index, layer in enumerate(kept):
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                setattr(module, "layer_idx", new_index)  # noqa: B010 (typed loosely on purpose)
    places = (("model", "layers"), ("transformer", "h"), ("model.decoder", "layers"), ("gpt_neox", "layers"))
    for parent_path, attr in places:
        parent: Any = model
        for part in parent_path.split("."):
            parent = getattr(parent, part, None)
        if parent is not None and getattr(parent, attr, None) is layers:
            setattr(parent, attr, nn.ModuleList(kept))
            break
    config: Any = getattr(model, "config")  # noqa: B009 (typed as Any on purpose)
    config.num_hidden_layers = len(kept)
    if getattr(config, "layer_types", None):
        config.layer_types = [t for i, t in enumerate(config.layer_types) if i not in set(skip)]


_PAPER = (
    "Parameter and Computation Efficient Transfer Learning for Vision-Language Pre-trained Models "
    "(DAS, dynamic architecture skipping; Wu et al., NeurIPS 2023)"
)


class DasSkipInput(BaseModel):
    """Arguments of the ``das_skip`` tool."""

    model: str = Field(description="Hugging Face causal-LM folder (decoder layers returning hidden states)")
    data: str = Field(description="texts of the target task: .txt (one a line) or .jsonl ('text' field)")
    out: str = Field(description="output folder: a smaller checkpoint (adapter_dim 0) or adapters + manifest")
    k: int = Field(default=1, gt=0, description="number of decoder layers to skip")
    rounds: int = Field(default=40, gt=0, description="bandit rounds")
    adapter_dim: int = Field(default=8, ge=0, description="bottleneck of the replacing adapters (0: plain skip)")
    finetune_steps: int = Field(default=40, ge=0, description="adapter fine-tuning steps after the search")
    lr: float = Field(default=1e-3, gt=0)
    temperature: float = Field(default=0.05, gt=0, description="τ of the Gumbel-top-k sampling over values")
    protect_first: bool = Field(
        default=True,
        description="never skip layer 0 when adapters stay in the model (HF caches read the sequence length there)",
    )
    batch_size: int = Field(default=8, gt=0)
    max_length: int = Field(default=64, gt=1)
    seed: int = 0


class DasSkipOutput(BaseModel):
    """Result of the ``das_skip`` tool."""

    out: str
    skipped_layers: list[int]
    layer_values: list[float] = Field(description="bandit value per layer (reward relative to the dense model)")
    dense_loss: float
    skipped_loss_before_finetune: float
    skipped_loss_after_finetune: float
    block_parameters_removed: int
    adapter_parameters: int
    forward_seconds_dense: float
    forward_seconds_skipped: float


@tool(
    name="das_skip",
    family="sparse",
    paper=_PAPER,
    tags=(
        "sparse",
        "layer-skipping",
        "inference",
        "adapters",
        "transfer",
        "fine-tuning",
        "unlabelled-target",
        "needs:causal-lm",
        "needs:texts",
    ),
    heavy=True,
)
def das_skip(args: DasSkipInput) -> DasSkipOutput:
    """DAS: find the most redundant decoder layers of a causal LM for a task with a bandit over skip sets (reward
    −loss), skip them, and replace them with fine-tuned lightweight adapters (or nothing) for faster inference."""
    import torch

    from malot_sparse.core.causal_lm import decoder_layers, lm_batches, lm_loss, load_lm, load_text_lines

    torch.manual_seed(args.seed)
    model, tokenizer = load_lm(args.model)
    model.eval()
    blocks = decoder_layers(model)
    if args.k >= len(blocks):
        raise ToolError(f"k={args.k} would skip all {len(blocks)} decoder layers", hint="choose a smaller k")
    texts = load_text_lines(args.data)
    for p in model.parameters():
        p.requires_grad_(False)
    hidden = int(getattr(model, "config").hidden_size)  # noqa: B009
    adapters = make_adapters(len(blocks), hidden, args.adapter_dim, args.seed)
    batches = lm_batches(tokenizer, texts, args.batch_size, args.max_length, args.seed)
    held_out = lm_batches(tokenizer, texts, args.batch_size, args.max_length, args.seed + 1)(0)

    def loss_fn(step: int) -> torch.Tensor:
        ids, mask = batches(step)
        return lm_loss(model, ids, mask)

    def eval_loss() -> float:
        with torch.no_grad():
            return float(lm_loss(model, *held_out))

    candidates = list(range(1 if args.protect_first and args.adapter_dim else 0, len(blocks)))
    found = skip_bandit(
        blocks,
        adapters,
        loss_fn,
        k=args.k,
        rounds=args.rounds,
        temperature=args.temperature,
        adapter_lr=args.lr if args.adapter_dim else 0.0,
        candidates=candidates,
        seed=args.seed,
    )
    dense_loss = eval_loss()
    fresh = make_adapters(len(blocks), hidden, args.adapter_dim, args.seed)  # the search's adapters saw other sets
    with skipping(blocks, fresh, found.skip):
        before = eval_loss()
    finetune_adapters(blocks, fresh, found.skip, loss_fn, steps=args.finetune_steps, lr=args.lr)
    with skipping(blocks, fresh, found.skip):
        after = eval_loss()
    dense_time, skipped_time = _paired_forward_seconds(model, blocks, fresh, found.skip, held_out)
    removed = sum(p.numel() for i in found.skip for p in blocks[i].parameters())
    adapter_params = sum(p.numel() for i in found.skip for p in fresh[i].parameters())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.adapter_dim == 0:
        drop_decoder_layers(model, found.skip)
        model.save_pretrained(str(out))  # type: ignore[operator]
        tokenizer.save_pretrained(str(out))
    else:
        from safetensors.torch import save_file

        tensors = {f"{i}.{n}": t.detach().contiguous() for i in found.skip for n, t in fresh[i].state_dict().items()}
        save_file(tensors, str(out / "das_adapters.safetensors"))
        manifest = {"base_model": str(Path(args.model).resolve()), "skip": found.skip, "adapter_dim": args.adapter_dim}
        (out / "das.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return DasSkipOutput(
        out=str(out),
        skipped_layers=found.skip,
        layer_values=found.values,
        dense_loss=dense_loss,
        skipped_loss_before_finetune=before,
        skipped_loss_after_finetune=after,
        block_parameters_removed=removed,
        adapter_parameters=adapter_params,
        forward_seconds_dense=dense_time,
        forward_seconds_skipped=skipped_time,
    )


def load_das_model(folder: str | Path) -> tuple[nn.Module, Any]:
    """Load a ``das_skip`` result with adapters: the base model with the skipped layers replaced by the adapters."""
    from safetensors.torch import load_file

    from malot_sparse.core.causal_lm import decoder_layers, load_lm

    path = Path(folder)
    manifest_file = path / "das.json"
    if not manifest_file.is_file():
        raise ToolError(f"{path} holds no das.json", hint="a plain-skip result (adapter_dim 0) loads as a normal model")
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    model, tokenizer = load_lm(manifest["base_model"])
    blocks = decoder_layers(model)
    hidden = int(getattr(model, "config").hidden_size)  # noqa: B009
    adapters = make_adapters(len(blocks), hidden, int(manifest["adapter_dim"]))
    tensors = load_file(str(path / "das_adapters.safetensors"))
    for i in manifest["skip"]:
        adapters[i].load_state_dict({n.split(".", 1)[1]: t for n, t in tensors.items() if n.split(".")[0] == str(i)})
        blocks[i] = adapters[i]
    model.eval()
    return model, tokenizer


def _paired_forward_seconds(
    model: nn.Module,
    blocks: nn.ModuleList,
    adapters: nn.ModuleList,
    skip: Sequence[int],
    batch: tuple[torch.Tensor, torch.Tensor],
    repeats: int = 7,
) -> tuple[float, float]:
    """Median forward wall time of the dense and the skipped model, measured alternately after two warm-ups each."""
    import statistics

    import torch

    ids, mask = batch
    dense: list[float] = []
    skipped: list[float] = []
    with torch.no_grad():
        for index in range(repeats + 2):
            for times, skip_set in ((dense, ()), (skipped, skip)):
                with skipping(blocks, adapters, skip_set):
                    start = time.perf_counter()
                    model(input_ids=ids, attention_mask=mask)
                    if index >= 2:
                        times.append(time.perf_counter() - start)
    return statistics.median(dense), statistics.median(skipped)
