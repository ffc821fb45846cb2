"""Order Matters (Vinyals, Bengio, Kudlur, "Order Matters: Sequence to sequence for sets").

* **Read-process-write** set encoder: each element is embedded independently (*read*) into a memory ``m_i``; the
  *process* block runs ``P`` steps of an LSTM that takes no input but its previous output ``q*_{t-1}`` and attends
  over the memories by content (``e_i = <m_i, q_t>``, ``r_t = sum_i softmax(e)_i m_i``, ``q*_t = [q_t, r_t]``). Every
  operation on the memories is a sum or a softmax over the set, so ``q*_P`` does not depend on the input order.
* **Write**: a pointer-network decoder emits a sequence of element indices (plus an END pointer), attending over the
  memories with additive attention; already chosen elements are masked.
* **Order-free set loss**: when the output is a set, the paper lets the model choose the output order, training on
  the ordering the model finds most likely; for small sets we search all orderings and take the minimum negative
  log-likelihood (:func:`min_over_orders_nll`).
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

__all__ = [
    "PointerDecoder",
    "ReadProcessEncoder",
    "Set2Seq",
    "min_over_orders_nll",
    "random_order_nll",
    "subset_accuracy",
    "subset_task_batch",
    "train_subset_task",
]


class ReadProcessEncoder(nn.Module):
    """Embeds a set ``(batch, n, in_dim)`` into memories ``(batch, n, d)`` and an order-invariant ``q*``."""

    def __init__(self, in_dim: int, d: int, process_steps: int) -> None:
        super().__init__()
        self.read = nn.Sequential(nn.Linear(in_dim, d), nn.ReLU(), nn.Linear(d, d))
        self.process = nn.LSTMCell(2 * d, d)
        self.d = d
        self.process_steps = process_steps

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(memories, q_star)``; ``mask`` ``(batch, n)`` marks real elements (padding is ignored)."""
        memories = self.read(x)
        batch = x.shape[0]
        h = memories.new_zeros(batch, self.d)
        c = memories.new_zeros(batch, self.d)
        q_star = memories.new_zeros(batch, 2 * self.d)
        for _ in range(self.process_steps):
            h, c = self.process(q_star, (h, c))
            scores = torch.einsum("bnd,bd->bn", memories, h)
            if mask is not None:
                scores = scores.masked_fill(~mask, float("-inf"))
            attention = torch.softmax(scores, dim=-1)
            read = torch.einsum("bn,bnd->bd", attention, memories)
            q_star = torch.cat([h, read], dim=-1)
        return memories, q_star


class PointerDecoder(nn.Module):
    """An LSTM that points at set elements (or END, index ``n``) one step at a time, never twice at one element."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.init = nn.Linear(2 * d, 2 * d)
        self.cell = nn.LSTMCell(d, d)
        self.start = nn.Parameter(torch.zeros(d))
        self.end = nn.Parameter(torch.randn(d) / math.sqrt(d))
        self.w_mem = nn.Linear(d, d, bias=False)
        self.w_query = nn.Linear(d, d)
        self.v = nn.Linear(d, 1, bias=False)
        self.d = d

    def step_scores(self, keys: torch.Tensor, h: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
        """Log-probabilities over ``n + 1`` pointers (elements then END), with chosen elements masked."""
        u = self.v(torch.tanh(self.w_mem(keys) + self.w_query(h)[:, None, :])).squeeze(-1)
        u = u.masked_fill(chosen, float("-inf"))
        return torch.log_softmax(u, dim=-1)

    def forward(
        self, memories: torch.Tensor, q_star: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Teacher-forced log-likelihood ``(batch,)`` of pointer sequences ``targets`` ``(batch, steps)`` (END = n).

        ``lengths`` (optional) counts the real steps of each row; later steps are padding and not scored.
        """
        batch, n, _ = memories.shape
        keys = torch.cat([memories, self.end.expand(batch, 1, self.d)], dim=1)
        h, c = self.init(q_star).chunk(2, dim=-1)
        chosen = torch.zeros(batch, n + 1, dtype=torch.bool, device=memories.device)
        prev = self.start.expand(batch, self.d)
        total = memories.new_zeros(batch)
        rows = torch.arange(batch, device=memories.device)
        for t in range(targets.shape[1]):
            h, c = self.cell(prev, (h, c))
            log_probs = self.step_scores(keys, h, chosen)
            target = targets[:, t]
            step = log_probs[rows, target]
            if lengths is not None:
                step = torch.where(t < lengths, step, torch.zeros_like(step))
            total = total + step
            chosen = chosen.clone()
            chosen[rows, target] = True
            chosen[:, n] = False  # END is never used up (padding after END repeats it)
            prev = keys[rows, target]
        return total

    @torch.no_grad()
    def greedy(self, memories: torch.Tensor, q_star: torch.Tensor, max_steps: int | None = None) -> list[list[int]]:
        """Greedy decoding: each row's pointer sequence up to (not including) END."""
        batch, n, _ = memories.shape
        keys = torch.cat([memories, self.end.expand(batch, 1, self.d)], dim=1)
        h, c = self.init(q_star).chunk(2, dim=-1)
        chosen = torch.zeros(batch, n + 1, dtype=torch.bool, device=memories.device)
        prev = self.start.expand(batch, self.d)
        rows = torch.arange(batch, device=memories.device)
        out: list[list[int]] = [[] for _ in range(batch)]
        finished = [False] * batch
        for _ in range(max_steps if max_steps is not None else n + 1):
            h, c = self.cell(prev, (h, c))
            pick = self.step_scores(keys, h, chosen).argmax(dim=-1)
            for b, index in enumerate(pick.tolist()):
                if not finished[b]:
                    if index == n:
                        finished[b] = True
                    else:
                        out[b].append(index)
            chosen = chosen.clone()
            chosen[rows, pick] = True
            chosen[:, n] = False  # END stays available
            prev = keys[rows, pick]
            if all(finished):
                break
        return out


class Set2Seq(nn.Module):
    """Read-process-write encoder plus pointer decoder: maps an input set to a sequence (or set) of its elements."""

    def __init__(self, in_dim: int, d: int = 32, process_steps: int = 5) -> None:
        super().__init__()
        self.encoder = ReadProcessEncoder(in_dim, d, process_steps)
        self.decoder = PointerDecoder(d)

    def log_likelihood(self, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``log p(targets | set x)`` per row; ``targets`` are pointer indices with END = ``x.shape[1]``."""
        memories, q_star = self.encoder(x)
        result: torch.Tensor = self.decoder(memories, q_star, targets)
        return result

    def predict(self, x: torch.Tensor) -> list[list[int]]:
        """Greedy pointer sequences for a batch of sets."""
        memories, q_star = self.encoder(x)
        return self.decoder.greedy(memories, q_star)


def min_over_orders_nll(model: Set2Seq, x: torch.Tensor, target_sets: list[list[int]]) -> torch.Tensor:
    """The order-free set loss: for each row, the smallest NLL over all orderings of its target set (then END).

    Exhaustive search over ``k!`` orderings, batched; meant for the small sets of the paper's experiments (k <= 6).
    Returns ``(batch,)`` losses whose gradients flow through the best ordering of each row.
    """
    n = x.shape[1]
    rows: list[int] = []
    sequences: list[list[int]] = []
    for b, elements in enumerate(target_sets):
        if len(elements) > 7:
            raise ValueError(f"set of {len(elements)} elements is too large for an exhaustive order search")
        for order in itertools.permutations(elements):
            rows.append(b)
            sequences.append([*order, n])
    width = max(len(s) for s in sequences)
    # rows of different lengths: pad with END after END; the pad steps are masked out below
    targets = torch.full((len(sequences), width), n, dtype=torch.long)
    for k, s in enumerate(sequences):
        targets[k, : len(s)] = torch.tensor(s)
    index = torch.tensor(rows)
    memories, q_star = model.encoder(x[index])
    lengths = torch.tensor([len(s) for s in sequences])
    log_lik = model.decoder(memories, q_star, targets, lengths)
    nll = -log_lik
    best = torch.full((x.shape[0],), float("inf"), dtype=nll.dtype)
    best = best.scatter_reduce(0, index, nll, reduce="amin")
    return best


def subset_task_batch(
    batch: int, set_size: int, threshold: float, generator: torch.Generator
) -> tuple[torch.Tensor, list[list[int]]]:
    """A set-output task: ``batch`` sets of ``set_size`` numbers in [0, 1]; the answer is the set of the elements
    above ``threshold`` (in no particular order). Returns ``(x (batch, n, 1), answer index sets)``."""
    values = torch.rand(batch, set_size, generator=generator)
    answers = [[i for i, v in enumerate(row) if v > threshold] for row in values.tolist()]
    return values[:, :, None], answers


def random_order_nll(
    model: Set2Seq, x: torch.Tensor, target_sets: list[list[int]], generator: torch.Generator
) -> torch.Tensor:
    """The baseline the paper compares against: NLL of each target set in a random order (then END)."""
    n = x.shape[1]
    width = max(len(s) for s in target_sets) + 1
    targets = torch.full((len(target_sets), width), n, dtype=torch.long)
    for b, elements in enumerate(target_sets):
        order = torch.randperm(len(elements), generator=generator).tolist()
        targets[b, : len(elements)] = torch.tensor([elements[i] for i in order], dtype=torch.long)
    lengths = torch.tensor([len(s) + 1 for s in target_sets])
    memories, q_star = model.encoder(x)
    result: torch.Tensor = -model.decoder(memories, q_star, targets, lengths)
    return result


def train_subset_task(
    model: Set2Seq,
    *,
    steps: int,
    set_size: int = 5,
    threshold: float = 0.5,
    order_free: bool = True,
    batch: int = 32,
    lr: float = 3e-3,
    seed: int = 0,
) -> list[float]:
    """Train on :func:`subset_task_batch` with the min-over-orders loss (``order_free``) or random target orders."""
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    losses: list[float] = []
    model.train()
    for _ in range(steps):
        x, answers = subset_task_batch(batch, set_size, threshold, generator)
        if order_free:
            loss = min_over_orders_nll(model, x, answers).mean()
        else:
            loss = random_order_nll(model, x, answers, generator).mean()
        optimiser.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimiser.step()
        losses.append(float(loss.detach()))
    model.eval()
    return losses


@torch.no_grad()
def subset_accuracy(
    model: Set2Seq, *, set_size: int = 5, threshold: float = 0.5, n: int = 500, seed: int = 99
) -> float:
    """Fraction of fresh sets whose greedy output is exactly the answer set (any order)."""
    x, answers = subset_task_batch(n, set_size, threshold, torch.Generator().manual_seed(seed))
    predictions = model.predict(x)
    return sum(sorted(p) == a for p, a in zip(predictions, answers, strict=True)) / n
