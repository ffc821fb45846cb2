"""Training UDR: feedback scoring of candidates, list-wise training, and iterative candidate mining.

Round 0 scores each training query's BM25 top ``candidates`` (its own problem excluded) with the feedback scorer.
Every round then trains the dual encoder for ``epochs`` passes over the queries, each query contributing one list of
``list_size`` candidates sampled from its scored ranking. Between rounds the current encoder retrieves its own top
``candidates`` per query; only pairs not scored yet go to the scorer, and the new scores merge with the old.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from malot.errors import RetrievalError
from malot.retrieval.corpus import Corpus
from malot.retrieval.text import LEAN_PROOF_INSTRUCTION, candidate_text, query_text
from malot.retrieval.udr.model import DualEncoder
from malot.retrieval.udr.sampling import sample_candidate_list
from malot.retrieval.udr.scorers import FeedbackScorer

__all__ = ["FeedbackTable", "TrainReport", "UDRTrainConfig", "atrain_udr", "evaluate_objective", "train_udr"]

#: ``progress(stage, done, total)``: stages are ``"score"`` (feedback), ``"objective"`` (the fixed evaluation batches,
#: before and after), ``"train"`` (optimiser steps of a round) and ``"mine"`` (re-encoding the corpus between rounds).
Progress = Callable[[str, int, int], None]


@dataclass
class UDRTrainConfig:
    """Hyper-parameters of UDR training (defaults follow the paper where it says, and fit a CPU otherwise).

    ``objective_batches``: how many fixed batches measure the objective before and after training (``None``: all).
    """

    rounds: int = 2
    candidates: int = 50
    list_size: int = 8
    n_top: int = 3
    n_bottom: int = 1
    batch_queries: int = 8
    epochs: int = 2
    max_steps_per_round: int | None = None
    lr: float = 2e-5
    weight_decay: float = 0.0
    scale: float = 20.0
    rank_weight: float = 4.0
    ce_weight: float = 1.0
    max_seq_length: int = 256
    instruction: str = LEAN_PROOF_INSTRUCTION
    seed: int = 0
    device: str = "cpu"
    objective_batches: int | None = 2


@dataclass
class RoundReport:
    """What one round did: pairs scored, optimiser steps, mean loss."""

    round: int
    new_pairs: int
    total_pairs: int
    steps: int
    mean_loss: float


@dataclass
class TrainReport:
    """The outcome of a training run; ``objective_before``/``after`` are the loss on fixed held-aside lists."""

    config: dict[str, Any]
    queries: int
    rounds: list[RoundReport] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    objective_before: float = float("nan")
    objective_after: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


class FeedbackTable:
    """Feedback scores per training query: ``table[q][c]`` is the score of corpus entry ``c`` for query ``q``."""

    def __init__(self) -> None:
        self.scores: dict[int, dict[int, float]] = {}

    def missing(self, query: int, candidates: Sequence[int]) -> list[int]:
        """The candidates of ``query`` not scored yet."""
        have = self.scores.get(query, {})
        return [c for c in candidates if c not in have]

    def ranking(self, query: int) -> list[int]:
        """The query's scored candidates, best first (ties by corpus index)."""
        have = self.scores.get(query, {})
        return sorted(have, key=lambda c: (-have[c], c))

    def tied_ranks(self, query: int) -> dict[int, int]:
        """1-based competition ranks: tied scores share the best rank, so the list loss prefers neither of them."""
        have = self.scores.get(query, {})
        ranks: dict[int, int] = {}
        previous: float | None = None
        rank = 0
        for position, c in enumerate(self.ranking(query), 1):
            if have[c] != previous:
                rank, previous = position, have[c]
            ranks[c] = rank
        return ranks

    def __len__(self) -> int:
        return sum(len(v) for v in self.scores.values())

    async def fill(
        self, corpus: Corpus, scorer: FeedbackScorer, wanted: dict[int, list[int]], progress: Progress | None = None
    ) -> int:
        """Score every wanted pair not scored yet; returns how many were scored."""
        pairs = [(q, c) for q, cands in wanted.items() for c in self.missing(q, cands)]
        chunk = 256
        for start in range(0, len(pairs), chunk):
            part = pairs[start : start + chunk]
            values = await scorer.score([(corpus[q], corpus[c]) for q, c in part])
            if len(values) != len(part):
                raise RetrievalError(f"the {scorer.name} scorer returned {len(values)} scores for {len(part)} pairs")
            for (q, c), value in zip(part, values, strict=True):
                self.scores.setdefault(q, {})[c] = float(value)
            if progress is not None:
                progress("score", min(start + chunk, len(pairs)), len(pairs))
        return len(pairs)


@dataclass
class _Batch:
    queries: list[str]
    candidates: list[list[str]]
    ranks: list[list[int]]


def _make_batch(
    corpus: Corpus, table: FeedbackTable, queries: Sequence[int], config: UDRTrainConfig, rng: random.Random
) -> _Batch:
    q_texts, c_texts, ranks = [], [], []
    for q in queries:
        ranking = table.ranking(q)
        positions = sample_candidate_list(
            ranking, size=config.list_size, n_top=config.n_top, n_bottom=config.n_bottom, rng=rng
        )
        tied = table.tied_ranks(q)
        q_texts.append(query_text(corpus[q], config.instruction))
        c_texts.append([candidate_text(corpus[ranking[p]], config.instruction) for p in positions])
        ranks.append([tied[ranking[p]] for p in positions])
    return _Batch(q_texts, c_texts, ranks)


def _batch_loss(model: DualEncoder, batch: _Batch, config: UDRTrainConfig) -> tuple[Any, dict[str, float]]:
    import torch

    from malot.retrieval.udr.loss import udr_loss

    length = max(len(c) for c in batch.candidates)
    flat: list[str] = []
    mask_rows, rank_rows = [], []
    for cands, ranks in zip(batch.candidates, batch.ranks, strict=True):
        pad = length - len(cands)
        flat.extend(cands + [cands[-1]] * pad)
        mask_rows.append([True] * len(cands) + [False] * pad)
        rank_rows.append(ranks + [ranks[-1]] * pad)
    q_emb = model.embed_queries(batch.queries)
    c_emb = model.embed_candidates(flat).reshape(len(batch.queries), length, -1)
    mask = torch.tensor(mask_rows, device=q_emb.device)
    lm_ranks = torch.tensor(rank_rows, dtype=q_emb.dtype, device=q_emb.device)
    return udr_loss(
        q_emb,
        c_emb,
        lm_ranks,
        mask,
        scale=model.scale,
        rank_weight=config.rank_weight,
        ce_weight=config.ce_weight,
    )


def evaluate_objective(
    model: DualEncoder, batches: Sequence[_Batch], config: UDRTrainConfig, progress: Progress | None = None
) -> float:
    """Mean training objective over fixed batches, without dropout or gradients."""
    import torch

    model.train(False)
    values: list[float] = []
    with torch.no_grad():
        for batch in batches:
            values.append(_batch_loss(model, batch, config)[1]["total"])
            if progress is not None:
                progress("objective", len(values), len(batches))
    return sum(values) / len(values) if values else float("nan")


def _mine(
    model: DualEncoder,
    corpus: Corpus,
    queries: Sequence[int],
    depth: int,
    instruction: str,
    progress: Progress | None = None,
) -> dict[int, list[int]]:
    import numpy as np

    from malot.retrieval.index import VectorIndex

    model.train(False)
    texts = [candidate_text(d, instruction) for d in corpus]
    chunk = 64
    parts = []
    for start in range(0, len(texts), chunk):  # in chunks, to report progress (encoding is most of the cost)
        parts.append(model.encode_candidates(texts[start : start + chunk]))
        if progress is not None:
            progress("mine", min(start + chunk, len(texts)), len(texts))
    index = VectorIndex(np.concatenate(parts) if len(parts) > 1 else parts[0])
    q_vecs = model.encode_queries([query_text(corpus[q], instruction) for q in queries])
    out: dict[int, list[int]] = {}
    for row, q in enumerate(queries):
        excluded = corpus.same_problem_ids(corpus[q])
        _, ids = index.search(q_vecs[row : row + 1], min(len(corpus), depth + len(excluded)))
        out[q] = [int(i) for i in ids[0] if int(i) not in excluded][:depth]
    return out


async def atrain_udr(
    corpus: Corpus,
    scorer: FeedbackScorer,
    config: UDRTrainConfig | None = None,
    *,
    model: DualEncoder | str | Path | None = None,
    progress: Progress | None = None,
) -> tuple[DualEncoder, TrainReport]:
    """Train a UDR dual encoder on ``corpus`` (queries and candidates both come from it) with ``scorer``'s feedback.

    ``model``: a dual encoder to continue training, or a sentence-transformers folder to start from (default
    MiniLM). Returns the trained model and a :class:`TrainReport`.
    """
    import torch

    from malot.retrieval.bm25 import BM25Retriever

    config = config or UDRTrainConfig()
    queries = [i for i, d in enumerate(corpus) if d.proof.strip()]
    if len(queries) < 2:
        raise RetrievalError("UDR training needs at least two demonstrations with proofs")
    rng = random.Random(config.seed)
    torch.manual_seed(config.seed)
    bm25 = BM25Retriever(corpus)
    wanted = {q: [i for i, _ in bm25.ranked_ids(corpus[q], config.candidates)] for q in queries}
    table = FeedbackTable()
    report = TrainReport(config=asdict(config), queries=len(queries))
    new = await table.fill(corpus, scorer, wanted, progress)
    if not isinstance(model, DualEncoder):
        model = DualEncoder.from_pretrained(
            model,
            device=config.device,
            max_seq_length=config.max_seq_length,
            scale=config.scale,
            instruction=config.instruction,
        )
    eval_rng = random.Random(config.seed + 1)
    eval_batches = [
        _make_batch(corpus, table, queries[i : i + config.batch_queries], config, eval_rng)
        for i in range(0, len(queries), config.batch_queries)
    ][: config.objective_batches]
    report.objective_before = evaluate_objective(model, eval_batches, config, progress)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    for round_no in range(config.rounds):
        if round_no > 0:
            mined = _mine(model, corpus, queries, config.candidates, config.instruction, progress)
            new = await table.fill(corpus, scorer, mined, progress)
        steps, losses = 0, []
        per_epoch = (len(queries) + config.batch_queries - 1) // config.batch_queries
        total = per_epoch * config.epochs
        if config.max_steps_per_round is not None:
            total = min(total, config.max_steps_per_round)
        model.train(True)
        while steps < total:
            order = queries[:]
            rng.shuffle(order)
            for start in range(0, len(order), config.batch_queries):
                if steps >= total:
                    break
                batch = _make_batch(corpus, table, order[start : start + config.batch_queries], config, rng)
                if len(batch.queries) < 2:
                    continue  # the in-batch term needs negatives from another query
                loss, parts = _batch_loss(model, batch, config)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                steps += 1
                losses.append(parts["total"])
                if progress is not None:
                    progress("train", steps, total)
        report.losses.extend(losses)
        report.rounds.append(
            RoundReport(round_no, new, len(table), steps, sum(losses) / len(losses) if losses else float("nan"))
        )
    report.objective_after = evaluate_objective(model, eval_batches, config, progress)
    return model, report


def train_udr(
    corpus: Corpus,
    scorer: FeedbackScorer,
    config: UDRTrainConfig | None = None,
    *,
    model: DualEncoder | str | Path | None = None,
    progress: Progress | None = None,
) -> tuple[DualEncoder, TrainReport]:
    """Synchronous :func:`atrain_udr` (runs its own event loop; call ``atrain_udr`` from async code)."""
    return asyncio.run(atrain_udr(corpus, scorer, config, model=model, progress=progress))
