"""UDR end to end: a short training run improves its objective; the trained retriever saves and loads; the LM
feedback path runs through ``malot.llm`` (the scripted double and a tiny offline model on the transformers backend).
"""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import pytest

from malot.config import RetrievalSettings
from malot.llm import GenerationRequest, ScriptedLLM
from malot.retrieval import Corpus, load_retriever, load_saved_retriever
from malot.retrieval.udr.model import DualEncoder
from malot.retrieval.udr.retriever import UDRRetriever
from malot.retrieval.udr.scorers import LMFeedbackScorer, ProxyScorer, feedback_prompt, proof_overlap
from malot.retrieval.udr.train import UDRTrainConfig, train_udr


def _fresh_model(minilm: Any) -> DualEncoder:
    return DualEncoder(copy.deepcopy(minilm), copy.deepcopy(minilm))


def test_proxy_scorer_is_proof_identifier_overlap(demos: Corpus) -> None:
    ring_only = demos.find("mathd_algebra_182")
    assert ring_only is not None
    assert proof_overlap(ring_only, ring_only) == 1.0
    scores = asyncio.run(ProxyScorer().score([(ring_only, d) for d in demos]))
    assert all(0.0 <= s <= 1.0 for s in scores)
    best = max(range(len(demos)), key=lambda i: (scores[i], -i))
    assert "ring" in demos[best].proof


@pytest.mark.slow
def test_short_udr_training_improves_its_objective_and_round_trips(demos: Corpus, minilm: Any, tmp_path: Path) -> None:
    corpus = demos.subset(range(8))
    config = UDRTrainConfig(
        rounds=2,
        candidates=7,
        list_size=8,
        batch_queries=4,
        epochs=1,
        max_steps_per_round=2,
        lr=1e-4,
        max_seq_length=48,
        objective_batches=None,
    )
    stages: list[str] = []
    model, report = train_udr(
        corpus, ProxyScorer(), config, model=_fresh_model(minilm), progress=lambda s, d, t: stages.append(s)
    )
    assert report.queries == 8 and len(report.rounds) == 2
    assert report.rounds[0].new_pairs == 8 * 7 and report.rounds[0].steps == 2
    assert report.rounds[1].total_pairs >= report.rounds[0].total_pairs  # mining merges, never drops, scores
    assert {"score", "objective", "train", "mine"} <= set(stages)  # every stage that takes time reports
    assert report.objective_after < report.objective_before
    saved = UDRRetriever(corpus, model).save(tmp_path / "udr")
    loaded = load_saved_retriever(saved)
    query = demos[20]
    assert [d.name for d in loaded.retrieve(query, 4)] == [
        d.name for d in UDRRetriever(corpus, model).retrieve(query, 4)
    ]
    via_settings = load_retriever(RetrievalSettings(retriever="udr", index_dir=saved))
    assert len(via_settings.retrieve(query, 3)) == 3


def test_lm_scorer_through_the_scripted_double(demos: Corpus) -> None:
    seen: list[GenerationRequest] = []

    def logprobs(request: GenerationRequest) -> list[float]:
        seen.append(request)
        return [-1.0, -3.0]

    llm = ScriptedLLM(["unused"], scorer=logprobs)
    q, c = demos[0], demos[1]
    scores = asyncio.run(LMFeedbackScorer(llm).score([(q, c), (q, demos[2])]))
    assert scores == [-2.0, -2.0]  # the mean per-token log-probability
    prompt = seen[0].prompt
    assert isinstance(prompt, str) and prompt == feedback_prompt(q, c)
    assert prompt.index(c.statement.strip()) < prompt.index(q.statement.strip())  # demonstration, then the query
    assert q.proof.strip() not in prompt and seen[0].score_continuation == "\n" + q.proof.strip("\n")
    short = asyncio.run(LMFeedbackScorer(llm, max_demo_chars=40).score([(q, c)]))
    assert short == [-2.0] and len(feedback_prompt(q, c, max_demo_chars=40)) < len(prompt)
    assert c.proof.strip() not in seen[-1].prompt  # the demonstration was cut for a short-context model
    from malot.errors import CapabilityError

    with pytest.raises(CapabilityError, match="prompt log-probs"):
        LMFeedbackScorer(ScriptedLLM(["x"]))


@pytest.mark.slow
def test_lm_feedback_training_with_a_tiny_model_on_the_transformers_backend(
    demos: Corpus, minilm: Any, tmp_path: Path
) -> None:
    """The paper's path end to end: a causal LM scores candidates, UDR trains on them (scores are meaningless)."""
    from malot.llm.hf_backend import TransformersLLM
    from malot.retrieval.udr.train import atrain_udr
    from malot.testing.tiny_models import build_tiny_llama

    folder = build_tiny_llama(tmp_path / "tiny-llama")
    corpus = demos.subset(range(6))
    config = UDRTrainConfig(rounds=2, candidates=4, batch_queries=3, epochs=1, max_steps_per_round=1, max_seq_length=32)

    async def run() -> tuple[list[float], Any]:
        async with TransformersLLM(folder, device="cpu") as llm:
            scorer = LMFeedbackScorer(llm, batch_size=8)
            scores = await scorer.score([(demos[0], d) for d in list(demos)[1:5]])
            return scores, await atrain_udr(corpus, scorer, config, model=_fresh_model(minilm))

    scores, (model, report) = asyncio.run(run())
    assert len(scores) == 4 and all(s < 0.0 for s in scores)  # mean log-probs of a random model: negative
    assert len(set(scores)) > 1  # the demonstration changes the conditional probability
    assert report.rounds[0].new_pairs == 6 * 4 and sum(r.steps for r in report.rounds) == 2
    assert len(UDRRetriever(corpus, model).retrieve(demos[30], 3)) == 3


def test_cli_train_with_the_proxy_scorer(demos: Corpus, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from malot.cli.app import main

    small = tmp_path / "small.jsonl"
    demos.subset(range(5)).to_jsonl(small)
    out = tmp_path / "udr-model"
    argv = ["retrieval", "train", "--corpus", str(small), "--out", str(out), "--rounds", "1", "--max-steps", "1"]
    argv += ["--batch", "5", "--candidates", "4", "--max-seq-length", "32", "--json"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["queries"] == 5 and summary["rounds"][0]["steps"] == 1
    assert DualEncoder.is_saved_model(out) and (out / "train_report.json").is_file()
    assert main(["retrieval", "query", demos[10].statement, "--index", str(out / "index"), "-k", "2", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["results"]) == 2
