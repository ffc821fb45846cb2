"""UDR's language-model feedback through the OpenAI-compatible backend against the real local vLLM server.

The paper's scorer (mean log-probability of the query's proof given a demonstration) over HTTP, then two rounds of
UDR training with mining on those scores. The tiny model's scores carry no meaning; the path is what is tested.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import pytest

from malot.llm import load_llm
from malot.llm.hf_backend import TransformersLLM
from malot.retrieval import Corpus, load_corpus
from malot.retrieval.encoders import load_sentence_transformer
from malot.retrieval.udr.model import DualEncoder
from malot.retrieval.udr.retriever import UDRRetriever
from malot.retrieval.udr.scorers import LMFeedbackScorer
from malot.retrieval.udr.train import UDRTrainConfig, atrain_udr
from malot.testing.vllm_server import LocalVllmServer

pytestmark = pytest.mark.slow


class CountingScorer(LMFeedbackScorer):
    """The LM scorer, recording which (query, candidate) pairs went to the server."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[tuple[str, str]] = []

    async def score(self, pairs: Sequence[Any]) -> list[float]:
        self.sent.extend((q.name, c.name) for q, c in pairs)
        return await super().score(pairs)


async def test_lm_scorer_and_udr_mining_through_a_vllm_server(
    vllm_server: LocalVllmServer, hf_llama: TransformersLLM
) -> None:
    shortest = sorted(load_corpus(), key=lambda d: len(d.input_text) + len(d.proof))[:6]
    corpus = Corpus(shortest)
    pairs = [(corpus[0], d) for d in list(corpus)[1:4]]
    async with load_llm(vllm_server.model_string) as llm:
        scorer = LMFeedbackScorer(llm, batch_size=4, max_demo_chars=300)
        scores = await scorer.score(pairs)
        # the same prompts scored in-process by the transformers backend on the same weights
        local = await LMFeedbackScorer(hf_llama, batch_size=4, max_demo_chars=300).score(pairs)
        assert scores == pytest.approx(local, abs=2e-3)
        assert all(s < 0.0 for s in scores) and len(set(scores)) > 1
        minilm = load_sentence_transformer(None, device="cpu", max_seq_length=32)
        config = UDRTrainConfig(
            rounds=2, candidates=3, batch_queries=3, epochs=1, max_steps_per_round=1, max_seq_length=32
        )
        counting = CountingScorer(llm, batch_size=4, max_demo_chars=300)
        model, report = await atrain_udr(
            corpus, counting, config, model=DualEncoder(copy.deepcopy(minilm), copy.deepcopy(minilm))
        )
    assert report.rounds[0].new_pairs == len(corpus) * 3
    # mining: round 2 sends only pairs the server has not scored yet
    assert len(counting.sent) == len(set(counting.sent)) == sum(r.new_pairs for r in report.rounds)
    assert sum(r.steps for r in report.rounds) == 2
    assert len(UDRRetriever(corpus, model).retrieve(corpus[1], 2)) == 2
