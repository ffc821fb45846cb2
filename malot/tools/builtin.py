"""malot's own capabilities as tools, registered through the ``malot.tools`` entry points like any plugin.

* ``lean_check``: check a Lean snippet with the acceptance rule (verdict, errors with their goals, axioms);
* ``retrieve_demos``: solved problems similar to a statement, from the configured retriever (BM25 over the shipped
  demonstrations when none is configured);
* ``prove``: a sub-prover call with its own budget (samples, rounds, strategy);
* ``recommend_tools``: the tool advisor (:mod:`malot.tools.advisor`).

Settings come from :func:`malot.load_settings` (``malot.toml``, ``MALOT_`` variables) when a tool runs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from malot.tools.registry import tool

__all__ = ["LeanCheckOutput", "ProveOutput", "lean_check", "prove", "recommend_tools", "retrieve_demos"]


class LeanCheckOutput(BaseModel):
    """What ``lean_check`` found: the acceptance rule's verdict and Lean's errors with line, column and goal."""

    accepted: bool
    status: str
    reasons: list[str] = Field(default_factory=list)
    errors: list[dict[str, Any]] = Field(default_factory=list)
    axioms: list[str] | None = None
    lean_cpu_seconds: float = 0.0


def check_output(result: Any) -> LeanCheckOutput:
    """A :class:`~malot.lean.base.CheckResult` as ``lean_check`` reports it."""
    from malot.provers.feedback import messages_of

    cpu = result.cpu_s if result.cpu_s is not None else result.time_s
    return LeanCheckOutput(
        accepted=bool(result.accepted),
        status=str(result.status),
        reasons=list(result.reasons()),
        errors=messages_of(result),
        axioms=result.axioms,
        lean_cpu_seconds=float(cpu or 0.0) if result.status != "screened" else 0.0,
    )


@tool(family="lean", tags=("lean", "verification", "proof-checking", "needs:lean"))
async def lean_check(code: str, theorem: str | None = None, timeout_s: float | None = None) -> LeanCheckOutput:
    """Check a Lean 4 file with malot's acceptance rule: compiles, no sorry, allowed axioms only, statement intact.

    Args:
        code: the whole Lean file (header, statement and proof).
        theorem: the theorem to judge (default: the last one in the file).
        timeout_s: Lean time limit in seconds (default: lean.timeout_s).
    """
    from malot.api import verify

    return check_output(await verify(code=code, theorem=theorem, timeout_s=timeout_s))


class DemoOut(BaseModel):
    """One solved problem: its name, informal statement, Lean statement and proof."""

    name: str
    informal: str = ""
    statement: str
    proof: str


@tool(family="retrieval", tags=("retrieval", "demonstrations", "few-shot", "in-context"))
def retrieve_demos(query: str, k: int = 3) -> list[DemoOut]:
    """Solved problems similar to a statement, to learn proof patterns from (the configured retriever).

    Args:
        query: a Lean statement or its informal description.
        k: how many demonstrations (1-16).
    """
    from malot import load_settings

    settings = load_settings()
    k = max(1, min(k, 16))
    found = _configured(query, k, settings.retrieval)
    if found is None:
        found = _bm25_demos(query, k, settings.retrieval.corpus)
    return [DemoOut(**{key: d.get(key, "") for key in ("name", "informal", "statement", "proof")}) for d in found]


def _configured(query: str, k: int, retrieval: Any) -> list[dict[str, str]] | None:
    if retrieval.retriever in ("none", "random"):
        return None
    from malot.provers.demos import DemoSource, _from_object

    retriever = DemoSource(retrieval).retriever()
    if retriever is None:
        return None
    from malot.retrieval import Demonstration

    probe = Demonstration(name="query", split="unknown", informal=query, statement=query, header="")
    return [dict(_from_object(d)) for d in retriever.retrieve(probe, k)]


def _bm25_demos(query: str, k: int, corpus: Any) -> list[dict[str, str]]:
    import bm25s

    from malot.provers.demos import load_demo_file

    demos = load_demo_file(str(corpus) if corpus else None)
    texts = [f"{d['informal']} {d['statement']}" for d in demos]
    index = bm25s.BM25()
    index.index(bm25s.tokenize(texts, show_progress=False), show_progress=False)
    scores = index.get_scores(bm25s.tokenize([query], show_progress=False, return_ids=False)[0])
    order = sorted(range(len(demos)), key=lambda i: -float(scores[i]))[:k]
    return [dict(demos[i]) for i in order]


class ProveOutput(BaseModel):
    """A sub-prover's result: whether it proved the statement, the accepted file, and what it spent."""

    proved: bool
    proof: str | None = None
    strategy: str
    samples: int
    rounds: int
    lean_checks: int
    wall_s: float
    stopped: str | None = None


@tool(family="lean", tags=("lean", "proving", "sub-prover", "needs:model"))
async def prove(
    statement: str,
    model: str | None = None,
    strategy: str = "whole-proof",
    samples: int = 1,
    rounds: int = 0,
) -> ProveOutput:
    """Prove a Lean 4 statement with a sub-prover that has its own budget (samples, correction rounds).

    Args:
        statement: the Lean statement (``theorem name ... :=``) or ``minif2f:NAME``.
        model: the model string (default: llm.model from the settings).
        strategy: a proving strategy (see 'malot prove --help').
        samples: initial samples (the sub-prover's sample budget).
        rounds: correction rounds per sample.
    """
    from malot.api import prove as run_prove

    samples, rounds = max(1, min(samples, 64)), max(0, min(rounds, 8))
    result = await run_prove(statement, model=model, strategy=strategy, samples=samples, rounds=rounds)
    return ProveOutput(
        proved=result.proved,
        proof=result.proof,
        strategy=result.strategy,
        samples=result.samples,
        rounds=result.rounds,
        lean_checks=result.lean_checks,
        wall_s=result.wall_s,
        stopped=result.stopped,
    )


class ToolChoice(BaseModel):
    """A recommended tool."""

    name: str
    score: float
    summary: str
    family: str
    tags: list[str]
    entry_point: str


@tool(family="tools", tags=("tools", "advisor", "search", "recommendation"))
def recommend_tools(query: str, k: int = 5, method: Literal["bm25", "dense"] = "bm25") -> list[ToolChoice]:
    """Rank the installed tools for a task description (BM25 or dense over names, descriptions and taxonomy tags).

    Args:
        query: what you want to do, e.g. "merge two fine-tuned checkpoints".
        k: how many tools to return.
        method: bm25 (words) or dense (MiniLM sentence embeddings).
    """
    from malot.tools.advisor import recommend

    return [
        ToolChoice(
            name=r.name, score=r.score, summary=r.summary, family=r.family, tags=r.tags, entry_point=r.entry_point
        )
        for r in recommend(query, k=k, method=method)
    ]
