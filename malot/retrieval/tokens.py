"""Tokenisers for Lean 4 and LaTeX-flavoured problem text: search terms for BM25, identifiers for proof overlap."""

from __future__ import annotations

import re

__all__ = ["proof_identifiers", "search_tokens", "strip_lean_comments"]

_WORD = re.compile(r"[^\W\d_][\w'!?]*(?:\.[^\W\d_][\w'!?]*)*|\d+|[^\w\s(){}\[\],]")
_BLOCK_COMMENT = re.compile(r"/-.*?-/", re.DOTALL)
_LINE_COMMENT = re.compile(r"--[^\n]*")
_IDENT = re.compile(r"[^\W\d_][\w'!?]*(?:\.[^\W\d_][\w'!?]*)*")
_BINDER = re.compile(r"[({\[⦃]\s*([^:(){}\[\]⦃⦄]+?)\s*:")
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "if",
        "in",
        "is",
        "it",
        "its",
        "let",
        "of",
        "on",
        "or",
        "such",
        "than",
        "that",
        "the",
        "then",
        "there",
        "this",
        "to",
        "was",
        "what",
        "when",
        "where",
        "which",
        "with",
        "show",
        "find",
        "prove",
        "suppose",
        "given",
    ]
)
#: Words of the statement language that say nothing about which tactics or lemmas a proof uses.
_LEAN_KEYWORDS = frozenset(
    ["theorem", "lemma", "by", "at", "with", "fun", "λ", "have", "show", "from", "using", "only", "this"]
)


def search_tokens(text: str) -> list[str]:
    """Lower-cased BM25 terms: words, numbers and math symbols; dotted names also contribute their parts."""
    out: list[str] = []
    for token in _WORD.findall(text):
        low = token.lower()
        if low in _STOPWORDS:
            continue
        out.append(low)
        if "." in low:
            out.extend(part for part in low.split(".") if part and part not in _STOPWORDS)
    return out


def strip_lean_comments(code: str) -> str:
    """Lean source without ``/- ... -/`` block comments and ``--`` line comments."""
    return _LINE_COMMENT.sub("", _BLOCK_COMMENT.sub("", code))


def proof_identifiers(proof: str, statement: str = "") -> frozenset[str]:
    """The Lean identifiers a proof uses (tactics, lemmas, constants), without comments and local names.

    Local names are the binders of ``statement`` (``(x y : ℝ) (h₀ : ...)``) and names introduced in the proof by
    ``intro``/``obtain``-style patterns cannot be told apart cheaply, so names of at most two characters followed by
    digits or subscripts (``h``, ``h₀``, ``x1``) are dropped too.
    """
    local: set[str] = set()
    for group in _BINDER.findall(statement):
        local.update(group.split())
    names = set()
    for ident in _IDENT.findall(strip_lean_comments(proof)):
        if ident in local or ident in _LEAN_KEYWORDS or _is_short_local(ident):
            continue
        names.add(ident)
    return frozenset(names)


def _is_short_local(ident: str) -> bool:
    stem = ident.rstrip("0123456789₀₁₂₃₄₅₆₇₈₉'")
    return len(stem) <= 2 and "." not in ident and stem.lower() == stem
