"""Re-splicing: put the problem's own header and statement around whatever proof a model wrote.

A model may answer with a whole Lean file (imports, helper lemmas, its own copy of the statement, possibly fenced
in Markdown), or with just a proof body. Either way the checked file is the trusted header, the model's helper
declarations (the *preamble*), the **original** statement, and the model's proof. A model that quietly weakened
the statement therefore proves the real one or fails.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from malot.lean.lexer import Dialect, Token, code_view, detect_dialect, tokenize

__all__ = ["Splice", "extract_code", "parse_statement", "splice_candidate"]

_FENCE_RE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)```", re.DOTALL)
_OPEN_FENCE_RE = re.compile(r"```[ \t]*[A-Za-z0-9_+-]*[ \t]*\n")
_DECL_KEYWORDS = ("theorem", "lemma")
_MODIFIERS = frozenset({"private", "protected", "noncomputable", "nonrec", "unsafe", "partial"})
_OPEN = {"(": ")", "[": "]", "{": "}", "⟨": "⟩", "@[": "]", "⦃": "⦄"}
_CLOSE = frozenset(_OPEN.values())


def extract_code(text: str, name: str | None = None) -> tuple[str, bool]:
    """The Lean code in a model's answer and whether it came from a Markdown fence.

    With several fenced blocks, the last one declaring ``name`` wins (else the last block); an opening fence
    without its closing one (a truncated answer) yields everything after it.
    """
    blocks = [m.group(2) for m in _FENCE_RE.finditer(text)]
    if blocks:
        if name:
            pattern = re.compile(rf"\b(?:theorem|lemma)\s+{re.escape(name)}(?![\w'.])")
            named = [b for b in blocks if pattern.search(b)]
            if named:
                return named[-1], True
        return blocks[-1], True
    opened = list(_OPEN_FENCE_RE.finditer(text))
    if opened:
        return text[opened[-1].end() :], True
    return text, False


def parse_statement(statement: str) -> tuple[str, str]:
    """Split a problem statement into its signature (without ``:=``) and mode: ``"tactic"`` or ``"term"``.

    MiniF2F statements end in ``:= by``; term-mode statements (what the prelude tests use) end in ``:=``; a
    statement with neither is treated as a bare signature in tactic mode.
    """
    s = statement.rstrip()
    m = re.search(r":=\s*by$", s)
    if m:
        return s[: m.start()].rstrip(), "tactic"
    if s.endswith(":="):
        return s[:-2].rstrip(), "term"
    return s, "tactic"


@dataclass
class Splice:
    """The file to check and where its parts lie (offsets into ``code``)."""

    code: str
    header_end: int
    statement_start: int
    statement_end: int
    candidate_had_statement: bool
    ok: bool = True
    problems: list[str] = field(default_factory=list)


def _find_declaration(tokens: list[Token], name: str) -> int | None:
    for k in range(len(tokens) - 1):
        if tokens[k].text in _DECL_KEYWORDS and tokens[k + 1].kind == "ident" and tokens[k + 1].text == name:
            return k
    return None


def _declaration_start(tokens: list[Token], k: int) -> int:
    """Walk back from the ``theorem`` keyword over modifiers and ``@[...]`` attributes."""
    j = k - 1
    while j >= 0:
        if tokens[j].text in _MODIFIERS:
            j -= 1
        elif tokens[j].text == "]":
            depth = 0
            while j >= 0:
                if tokens[j].text == "]":
                    depth += 1
                elif tokens[j].text in ("[", "@["):
                    depth -= 1
                    if depth == 0:
                        break
                j -= 1
            if j < 0 or tokens[j].text != "@[":
                return tokens[k].start
            j -= 1
        else:
            break
    return tokens[j + 1].start


def _signature_end(tokens: list[Token], k: int) -> int | None:
    """Index of the ``:=`` that ends the signature of the declaration at token ``k`` (bracket depth 0)."""
    depth = 0
    for j in range(k + 2, len(tokens)):
        t = tokens[j].text
        if t in _OPEN:
            depth += 1
        elif t in _CLOSE:
            depth = max(0, depth - 1)
        elif t == ":=" and depth == 0:
            return j
        elif depth == 0 and (t in _DECL_KEYWORDS or tokens[j].kind == "command" or t == "|"):
            return None
    return None


def _indent(body: str) -> str:
    lines = body.split("\n")
    first = next((ln for ln in lines if ln.strip()), "")
    if first[:1] in (" ", "\t"):
        return body
    return "\n".join(("  " + ln) if ln.strip() else ln for ln in lines)


def _clean_preamble(preamble: str, header: str, dialect: Dialect) -> str:
    """Drop lines that repeat the trusted header (imports, options, opens) and any ``import`` line."""
    header_lines = {ln.strip() for ln in header.splitlines() if ln.strip()}
    view_lines = code_view(preamble, dialect).split("\n")
    kept = []
    for raw, view in zip(preamble.split("\n"), view_lines, strict=True):
        stripped = view.strip()
        if stripped.startswith("import ") or stripped == "prelude" or (stripped and raw.strip() in header_lines):
            continue
        kept.append(raw)
    return "\n".join(kept).strip("\n")


def splice_candidate(header: str, statement: str, name: str, candidate: str) -> Splice:
    """Assemble header + preamble + original statement + the candidate's proof.

    ``candidate`` is the (already unfenced) code: a full snippet, with or without its own copy of the statement,
    or just a proof body.
    """
    header = header if not header or header.endswith("\n") else header + "\n"
    signature, mode = parse_statement(statement)
    dialect = detect_dialect(header)  # the candidate is lexed by the rules its header makes available
    view = code_view(candidate, dialect)
    tokens = tokenize(view)
    k = _find_declaration(tokens, name)
    if k is not None:
        start = _declaration_start(tokens, k)
        j = _signature_end(tokens, k)
        if j is None:
            return Splice(
                "",
                0,
                0,
                0,
                True,
                ok=False,
                problems=[f"the candidate declares {name} but its statement has no ':=' (incomplete output?)"],
            )
        preamble = _clean_preamble(candidate[:start], header, dialect)
        proof = candidate[tokens[j].end :]
        prefix = header + (preamble.rstrip() + "\n" if preamble.strip() else "")
        code = prefix + signature + " :=" + proof
        return Splice(code, len(header), len(prefix), len(prefix) + len(signature) + 3, True)
    body = candidate.strip("\n")
    body_tokens = tokenize(code_view(body, dialect))
    if not body_tokens:
        return Splice("", 0, 0, 0, False, ok=False, problems=["the candidate contains no Lean code"])
    decl_starts = [t for t in body_tokens if t.text in ("theorem", "lemma", "example")]
    if decl_starts and body_tokens[0].text in ("theorem", "lemma", "example", "import"):
        return Splice(
            "",
            0,
            0,
            0,
            False,
            ok=False,
            problems=[f"the candidate declares no theorem named {name}"],
        )
    prefix = header
    if mode == "tactic" and body_tokens[0].text != "by":
        code = prefix + signature + " := by\n" + _indent(body)
    elif "\n" not in body.strip():
        code = prefix + signature + " := " + body.strip()
    else:
        code = prefix + signature + " :=\n" + _indent(body)
    return Splice(code, len(header), len(prefix), len(prefix) + len(signature) + 3, False)
