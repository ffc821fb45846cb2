"""The tool advisor: rank registered tools for a task description by BM25 over names, descriptions and tags.

Each tool is described by its name (split at ``_``/``-``), its description, its family, its tags, and the tags the
advisor derives from two taxonomies: the *setting* a method serves (zero-shot, few-shot, continual, cross-lingual,
merging, transfer; the pre-trained-models survey and the knowledge-graph ZSL/FSL survey) and the *inputs* it needs
(``needs:<argument>`` for every required argument). Only tools that came from a registered ``malot.tools`` entry
point are recommended, and each recommendation names that entry point, so it always resolves to something
installable. Ranking uses ``bm25s`` with a light suffix stemmer on both sides, or (``method="dense"``) the cosine
similarity of MiniLM sentence embeddings (both come with the ``retrieval`` extra).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel

from malot.errors import ToolError
from malot.tools.base import Tool
from malot.tools.registry import ToolRegistry
from malot.tools.source import tool_tags

__all__ = ["SETTINGS_TAXONOMY", "Method", "Recommendation", "advisor_tags", "recommend"]

#: Setting -> words in a tool's tags or description that place it there.
SETTINGS_TAXONOMY: dict[str, tuple[str, ...]] = {
    "zero-shot": ("zero-shot", "zero shot", "zsl", "unseen"),
    "few-shot": ("few-shot", "few shot", "fsl", "in-context", "meta-learning", "test-time"),
    "continual": ("continual", "lifelong", "incremental", "expert", "branch"),
    "cross-lingual": ("cross-lingual", "multilingual", "vocabulary", "language transfer", "embeddings"),
    "merging": ("merging", "merge", "average", "task-vectors", "task vector", "fisher", "composition", "compose"),
    "transfer": ("transfer", "initialisation", "initialization", "learngene", "distillation", "lora"),
    "decoding": ("decoding", "logits", "ensemble", "weak-to-strong"),
    "retrieval": ("retrieval", "retrieve", "demonstration", "hashing", "search"),
    "verification": ("lean", "proof", "verify", "verification", "theorem"),
}

_WORD = re.compile(r"[a-z0-9]+")
_SUFFIXES = ("ations", "ation", "ings", "ing", "ies", "ers", "er", "es", "ed", "s")


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def _tokens(text: str) -> list[str]:
    return [_stem(w) for w in _WORD.findall(text.lower())]


def advisor_tags(t: Tool) -> tuple[str, ...]:
    """Every tag the advisor knows for ``t``: :func:`tool_tags` plus ``setting:<name>`` from the taxonomy."""
    tags = list(tool_tags(t))
    text = " ".join([*t.metadata.tags, t.name.replace("_", " "), t.description]).lower()
    tags.extend(f"setting:{s}" for s, words in SETTINGS_TAXONOMY.items() if any(w in text for w in words))
    return tuple(dict.fromkeys(tags))


class Recommendation(BaseModel):
    """One recommended tool: its score, what it is, and the entry point that registers it."""

    name: str
    score: float
    summary: str
    family: str
    tags: list[str]
    plugin: str
    entry_point: str


def _document(t: Tool) -> str:
    tags = advisor_tags(t)
    words = [t.name.replace("_", " ").replace("-", " "), t.name, t.metadata.family, t.description]
    # names and tags weigh more than prose: repeat them
    words += [" ".join(tags)] * 2 + [t.name.replace("_", " ")] * 2
    return " ".join(w for w in words if w)


def _entry_points() -> dict[str, str]:
    """Entry point name -> its value, for every registered ``malot.tools`` entry point."""
    from malot.tools.plugins import discover_entry_points

    return {ep.name: ep.value for ep in discover_entry_points()}


Method = Literal["bm25", "dense"]


def recommend(
    query: str,
    *,
    registry: ToolRegistry | None = None,
    k: int = 5,
    candidates: Sequence[Tool] | None = None,
    method: Method = "bm25",
) -> list[Recommendation]:
    """The ``k`` registered tools that best fit ``query``, best first.

    ``bm25``: BM25 over the tools' names, descriptions and tags (tools scoring 0 are left out); ``dense``: cosine
    similarity of sentence embeddings (the offline MiniLM of the retrieval extra) of the same text.
    """
    if not query.strip():
        raise ToolError("the task description is empty", hint='describe the task, e.g. "merge two checkpoints"')
    if registry is None:
        from malot.tools.plugins import get_registry

        registry = get_registry()
    points = _entry_points()
    tools = [t for t in (candidates if candidates is not None else registry.list()) if t.metadata.plugin in points]
    if not tools:
        return []
    if method == "dense":
        return _ranked(tools, _dense_scores(query, tools), k, points, keep_zero=True)
    if method != "bm25":
        raise ToolError(f"unknown ranking method {method!r}", hint="use bm25 or dense")
    import bm25s

    corpus = [_tokens(_document(t)) for t in tools]
    query_tokens = [w for w in _tokens(query) if any(w in doc for doc in corpus)]
    if not query_tokens:
        return []
    vocab: dict[str, int] = {}
    for doc in corpus:
        for w in doc:
            vocab.setdefault(w, len(vocab))
    index = bm25s.BM25()
    index.index(
        bm25s.tokenization.Tokenized(ids=[[vocab[w] for w in d] for d in corpus], vocab=vocab), show_progress=False
    )
    bm25: Any = index.get_scores(query_tokens)
    return _ranked(tools, [float(x) for x in bm25], k, points, keep_zero=False)


def _dense_scores(query: str, tools: Sequence[Tool]) -> list[float]:
    """Cosine similarity between the query and each tool's text (names, description, tags) with MiniLM."""
    try:
        from malot.retrieval.encoders import SentenceEncoder
    except ImportError:
        raise ToolError("dense ranking needs the retrieval extra", hint="pip install 'malot[retrieval]'") from None
    global _ENCODER
    if _ENCODER is None:
        _ENCODER = SentenceEncoder()
    texts = [f"{t.name.replace('_', ' ')}: {t.description} Tags: {', '.join(advisor_tags(t))}" for t in tools]
    vectors = _ENCODER.encode([query, *texts])
    return [float(x) for x in vectors[1:] @ vectors[0]]


_ENCODER: Any = None


def _ranked(
    tools: Sequence[Tool], scores: Sequence[float], k: int, points: dict[str, str], *, keep_zero: bool
) -> list[Recommendation]:
    ranked = sorted(range(len(tools)), key=lambda i: (-scores[i], tools[i].name))
    out = []
    for i in ranked[: max(k, 0)]:
        if scores[i] <= 0 and not keep_zero:
            break
        t = tools[i]
        out.append(
            Recommendation(
                name=t.name,
                score=round(scores[i], 4),
                summary=t.summary,
                family=t.metadata.family,
                tags=list(advisor_tags(t)),
                plugin=t.metadata.plugin,
                entry_point=f"{t.metadata.plugin} = {points[t.metadata.plugin]}",
            )
        )
    return out
