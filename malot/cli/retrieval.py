"""``malot retrieval``: train UDR, build and save retriever indexes, and query them.

``train`` fits a UDR dual encoder from feedback (the offline proxy scorer, or a language model with prompt
log-probs via ``--scorer lm``); ``index`` builds any retriever over a corpus and saves it; ``query`` prints the
demonstrations a retriever picks for a problem (most relevant first; prompts put the first one last).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from malot.cli.common import console, echo_json, err_console, load_cli_settings, make_progress
from malot.errors import RetrievalError

KINDS = ("random", "bm25", "dense", "hybrid", "udr")


@click.group("retrieval")
def command() -> None:
    """Demonstration retrieval: train UDR, build indexes, query them."""


@contextmanager
def _stage_progress(enabled: bool) -> Iterator[Callable[[str, int, int], None]]:
    """A ``progress(stage, done, total)`` callback drawing one bar per stage (no-op when disabled).

    When stderr is not a terminal (a log file, CI, ``nohup``), bars would show nothing until the end: plain lines
    are written instead, at each tenth of a stage and at least every 30 seconds.
    """
    if not enabled:
        yield lambda stage, done, total: None
        return
    if not err_console.is_terminal:
        yield _ProgressLines()
        return
    progress = make_progress()
    tasks: dict[str, Any] = {}
    with progress:

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks or progress.tasks[tasks[stage]].finished:
                tasks[stage] = progress.add_task(stage, total=total, status="")
            progress.update(tasks[stage], completed=done, total=total)

        yield update


class _ProgressLines:
    """``progress(stage, done, total)`` as plain lines on stderr: ``udr train: train 12/124 (10%), 95s``."""

    def __init__(self, every_s: float = 30.0) -> None:
        self.began = time.monotonic()
        self.every_s = every_s
        self.last: dict[str, tuple[int, float]] = {}  # stage -> (tenth printed, time printed)

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        tenth = 10 * done // max(total, 1)
        printed_tenth, printed_at = self.last.get(stage, (-1, 0.0))
        if tenth > printed_tenth or now - printed_at >= self.every_s or done == total:
            if (tenth, done == total) == (printed_tenth, True):
                return
            self.last[stage] = (tenth, now)
            err_console.print(
                f"{stage}: {done}/{total} ({100 * done // max(total, 1)}%), {now - self.began:.0f}s",
                highlight=False,
                markup=False,
            )


def _splits(value: str | None) -> list[str] | None:
    return [s.strip() for s in value.split(",") if s.strip()] if value else None


@command.command("train")
@click.option("--corpus", type=click.Path(dir_okay=False), help="Training demonstrations JSONL (default: shipped).")
@click.option("--splits", help="Keep only these comma-separated splits of the corpus.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Where to save the model.")
@click.option("--scorer", type=click.Choice(["proxy", "lm"]), default="proxy", show_default=True)
@click.option("--llm", "llm_model", help="Model string for --scorer lm (default: llm.model from the config).")
@click.option("--max-demo-chars", type=int, help="--scorer lm: cut each demonstration to this many characters.")
@click.option("--encoder", help="Sentence-transformers folder to start from (default: offline MiniLM).")
@click.option("--rounds", type=int, default=2, show_default=True, help="Training rounds (mining between rounds).")
@click.option("--epochs", type=int, default=2, show_default=True, help="Passes over the queries per round.")
@click.option("--batch", "batch_queries", type=int, default=8, show_default=True, help="Queries per step.")
@click.option("--list-size", type=int, default=8, show_default=True)
@click.option("--candidates", type=int, default=50, show_default=True, help="Candidates scored per query.")
@click.option("--max-steps", type=int, help="Cap on optimiser steps per round.")
@click.option("--max-seq-length", type=int, default=256, show_default=True)
@click.option("--lr", type=float, default=2e-5, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--index/--no-index", "build_index", default=True, help="Also save a UDR index of the corpus in OUT/index."
)
@click.option("--json", "as_json", is_flag=True, help="Print the training report as JSON.")
@click.pass_context
def train(ctx: click.Context, /, **opts: Any) -> None:
    """Train a UDR retriever from feedback scores and save it to OUT."""
    from malot.retrieval.corpus import load_corpus
    from malot.retrieval.udr.retriever import UDRRetriever
    from malot.retrieval.udr.scorers import LMFeedbackScorer, ProxyScorer
    from malot.retrieval.udr.train import UDRTrainConfig, atrain_udr

    settings = load_cli_settings(ctx)
    corpus = load_corpus(opts["corpus"], splits=_splits(opts["splits"]))
    config = UDRTrainConfig(
        rounds=opts["rounds"],
        epochs=opts["epochs"],
        batch_queries=opts["batch_queries"],
        list_size=opts["list_size"],
        candidates=opts["candidates"],
        max_steps_per_round=opts["max_steps"],
        max_seq_length=opts["max_seq_length"],
        lr=opts["lr"],
        seed=opts["seed"],
        device=settings.retrieval.device,
    )
    out = Path(opts["out_dir"])

    async def run(progress: Callable[[str, int, int], None]) -> Any:
        if opts["scorer"] == "proxy":
            return await atrain_udr(corpus, ProxyScorer(), config, model=opts["encoder"], progress=progress)
        from malot.llm import load_llm

        llm_settings = (
            settings.llm.model_copy(update={"model": opts["llm_model"]}) if opts["llm_model"] else settings.llm
        )
        async with load_llm(llm_settings) as llm:
            scorer = LMFeedbackScorer(llm, max_demo_chars=opts["max_demo_chars"])
            return await atrain_udr(corpus, scorer, config, model=opts["encoder"], progress=progress)

    with _stage_progress(not opts["as_json"]) as progress:
        model, report = asyncio.run(run(progress))
        model.save(out)
        (out / "train_report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
        if opts["build_index"]:
            done = 0

            def step(n: int) -> None:
                nonlocal done
                done += n
                progress("index", done, len(corpus))

            UDRRetriever(corpus, model, progress=step).save(out / "index")
    summary = {
        "model": str(out),
        "queries": report.queries,
        "scorer": opts["scorer"],
        "rounds": [r.__dict__ for r in report.rounds],
        "objective_before": report.objective_before,
        "objective_after": report.objective_after,
        "index": str(out / "index") if opts["build_index"] else None,
    }
    if opts["as_json"]:
        echo_json(summary)
        return
    console.print(
        f"trained UDR on {report.queries} queries ({opts['scorer']} scorer): objective "
        f"{report.objective_before:.3f} -> {report.objective_after:.3f}; saved to {out}"
    )


@command.command("index")
@click.option("--retriever", "kind", type=click.Choice(KINDS), help="Kind (default: retrieval.retriever).")
@click.option("--corpus", type=click.Path(dir_okay=False), help="Demonstrations JSONL (default: retrieval.corpus).")
@click.option("--splits", help="Keep only these comma-separated splits of the corpus.")
@click.option("--model", help="Encoder folder (dense/hybrid) or trained UDR folder (udr).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder to save the index in.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def index(ctx: click.Context, /, **opts: Any) -> None:
    """Build a retriever over a corpus and save it (load it with retrieval.index_dir or 'query --index')."""
    from malot.retrieval.corpus import load_corpus
    from malot.retrieval.loader import build_retriever

    settings = load_cli_settings(ctx).retrieval
    kind = opts["kind"] or settings.retriever
    if kind == "none":
        raise RetrievalError("retrieval.retriever is 'none': nothing to index", hint="pass --retriever KIND")
    corpus = load_corpus(opts["corpus"] or settings.corpus, splits=_splits(opts["splits"]))
    with _stage_progress(not opts["as_json"]) as progress:
        progress("build " + kind, 0, 1)
        retriever = build_retriever(
            kind,
            corpus,
            model=opts["model"] or settings.model,
            seed=settings.seed,
            rrf_k=settings.rrf_k,
            device=settings.device,
        )
        folder = retriever.save(opts["out_dir"])
        progress("build " + kind, 1, 1)
    result = {"kind": kind, "size": len(corpus), "dir": str(folder), "splits": sorted(corpus.splits)}
    if opts["as_json"]:
        echo_json(result)
    else:
        console.print(f"saved a {kind} index of {len(corpus)} demonstrations to {folder}")


@command.command("query")
@click.argument("query")
@click.option("--index", "index_dir", type=click.Path(file_okay=False), help="A saved retriever folder.")
@click.option("--retriever", "kind", type=click.Choice(KINDS), help="Build this kind instead of loading an index.")
@click.option("--corpus", type=click.Path(dir_okay=False), help="Demonstrations JSONL when building.")
@click.option("--model", help="Encoder or trained UDR folder when building.")
@click.option("-k", type=int, help="How many demonstrations (default: retrieval.k).")
@click.option("--name", "by_name", is_flag=True, help="QUERY is a MiniF2F problem name, not a statement.")
@click.option("--target-split", help="Split of the target problem (the leakage guard refuses test solutions).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def query(ctx: click.Context, /, query: str, **opts: Any) -> None:
    """Show the demonstrations a retriever picks for QUERY (a Lean statement, or a problem name with --name)."""
    from malot.retrieval.base import load_saved_retriever
    from malot.retrieval.corpus import Demonstration, load_corpus
    from malot.retrieval.loader import build_retriever

    settings = load_cli_settings(ctx).retrieval
    target: Demonstration | str = query
    if opts["by_name"]:
        target = _find_problem(query)
    split = opts["target_split"] or settings.target_split
    saved = opts["index_dir"] or (settings.index_dir if not opts["kind"] else None)
    if saved:
        retriever = load_saved_retriever(saved, target_split=split)
    else:
        kind = opts["kind"] or settings.retriever
        if kind == "none":
            raise RetrievalError("retrieval.retriever is 'none'", hint="pass --retriever KIND or --index DIR")
        corpus = load_corpus(opts["corpus"] or settings.corpus)
        retriever = build_retriever(
            kind,
            corpus,
            model=opts["model"] or settings.model,
            seed=settings.seed,
            target_split=split,
            rrf_k=settings.rrf_k,
            device=settings.device,
        )
    k = opts["k"] if opts["k"] is not None else settings.k
    results = retriever.retrieve_scored(target, k)
    rows = [{"rank": i + 1, "name": d.name, "split": d.split, "score": s} for i, (d, s) in enumerate(results)]
    if opts["as_json"]:
        echo_json({"query": query, "kind": retriever.kind, "results": rows})
        return
    for row in rows:
        console.print(f"{row['rank']:>3}  {row['score']:>9.4f}  {row['name']}  [{row['split']}]", markup=False)


def _find_problem(name: str) -> Any:
    from malot.data import MINIF2F_JSONL
    from malot.retrieval.corpus import demonstration_from_row

    with MINIF2F_JSONL.open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if row.get("name") == name:
                return demonstration_from_row(row)
    raise RetrievalError(f"no MiniF2F problem named {name!r}", hint="check the name, or pass the statement itself")
