"""The source screen: constructs a proof may not contain, found in the code with comments and strings removed.

It runs on the assembled file (so the lexer sees what Lean sees) but judges only the model's parts: the preamble
before the statement and the proof after it. The trusted header and statement are skipped. Each finding is a
:class:`Violation` whose ``rule`` names the banned construct, so a rejection always says *why*.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from itertools import pairwise

from malot.lean.lexer import Dialect, Token, lex, tokenize

__all__ = ["Violation", "screen_tokens"]

#: Identifier parts that are never allowed (any dotted part matching bans the identifier).
_BANNED_NAMES = {
    "sorry": "sorry",
    "admit": "admit",
    "sorryAx": "sorryAx",
    "skipKernelTC": "set_option debug.skipKernelTC",
    "implemented_by": "implemented_by",
    "extern": "extern",
}
#: Names allowed only with the native-computation opt-in.
_NATIVE_NAMES = {"native_decide", "ofReduceBool", "trustCompiler", "ofReduceNat"}
#: Keywords (single-part identifiers) that are never allowed.
_BANNED_KEYWORDS = {
    "axiom": "axiom",
    "run_cmd": "run_cmd",
    "run_elab": "run_elab",
    "run_meta": "run_meta",
    "run_tac": "run_tac",
    "elab": "elab",
    "elab_rules": "elab",
    "macro": "macro",
    "macro_rules": "macro_rules",
    "syntax": "syntax",
    "declare_syntax_cat": "syntax",
    "notation": "notation",
    "notation3": "notation",
    "binder_predicate": "notation",
    "by_elab": "elab",
    "simproc": "elab",
    "dsimproc": "elab",
    "simproc_decl": "elab",
    "unif_hint": "unif_hint",
    "namespace": "namespace",
    "infix": "notation",
    "infixl": "notation",
    "infixr": "notation",
    "prefix": "notation",
    "postfix": "notation",
    "unsafe": "unsafe",
    "partial": "partial",
    "initialize": "initialize",
    "builtin_initialize": "initialize",
    "apply?": "apply?",
    "exact?": "exact?",
    "dbg_trace": "dbg_trace",
}
#: Names of the elaborator/kernel API that add or replace declarations without the kernel's full check, or swap
#: the environment (``Lean.addDecl``, ``Lean.Environment.addDeclCore``, ``Lean.Kernel.Environment.add...``); a
#: proof has no business naming them. Any dotted part matching bans the identifier.
_KERNEL_MEMBERS = frozenset(
    {
        "addDecl",
        "addDeclCore",
        "addDeclWithoutChecking",
        "addAndCompile",
        "modifyEnv",
        "setEnv",
        "ofKernelEnv",
        "toKernelEnv",
        "unsafeSetEnv",
    }
)
#: Namespaces of the kernel/environment API: a name containing one of these *consecutive* part pairs, or any
#: part ``Environment``, is banned. A lone ``Kernel`` part is not (``ProbabilityTheory.Kernel`` is mathematics).
_KERNEL_PREFIXES = frozenset({("Lean", "Kernel"), ("Lean", "Environment"), ("Kernel", "Environment")})
#: Attributes that register elaborators, macros or start-up code (``@[tactic omega] def ...``).
_ELAB_ATTRIBUTES = frozenset(
    {
        "tactic",
        "term_elab",
        "command_elab",
        "macro",
        "builtin_tactic",
        "builtin_term_elab",
        "builtin_command_elab",
        "builtin_macro",
        "init",
        "builtin_init",
        "command_code_action",
        "incremental",
        "delab",
        "app_delab",
        "app_unexpander",
        "builtin_delab",
        "env_linter",
        "code_action_provider",
        "hole_code_action",
        "command_parser",
        "term_parser",
        "tactic_parser",
        "builtin_command_parser",
        "builtin_term_parser",
        "builtin_tactic_parser",
    }
)
#: ``#commands`` a proof may use; every other one is rejected (``#exit``/``#eval`` by name).
_ALLOWED_COMMANDS = frozenset({"#check", "#print"})
#: Keywords that change how the statement elaborates when they come before it.
#: Command words that run or register code; in the literal text of an interpolated string they are rejected (Lean
#: reads that text as code after a parse error in the string's ``{...}``). English-like keywords (``partial``,
#: ``prefix``, ``notation``) are left out there, so prose in an ``s!`` string is no violation.
_HIDDEN_COMMAND_WORDS = frozenset(
    {
        "run_cmd",
        "run_elab",
        "run_meta",
        "initialize",
        "builtin_initialize",
        "elab",
        "elab_rules",
        "macro",
        "macro_rules",
        "syntax",
        "axiom",
    }
)
#: Modifiers that would attach to the trusted statement if the preamble ended with them.
_STATEMENT_MODIFIERS = frozenset(
    {"private", "protected", "public", "noncomputable", "nonrec", "unsafe", "partial", "meta", "local", "scoped"}
)
_BEFORE_STATEMENT = {
    "instance": "instance before statement",
    "local": "local before statement",
    "scoped": "local before statement",
    "variable": "variable before statement",
    "export": "export before statement",
    "default_instance": "instance before statement",
    "universe": "universe before statement",
}


@dataclass(frozen=True, slots=True)
class Violation:
    """One banned construct: which rule, where (1-based line, 0-based column), and a sentence for the user."""

    rule: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.rule} at {self.line}:{self.column}: {self.message}"


class _Lines:
    """Offset -> (1-based line, 0-based column) by binary search over the line starts (no rescans)."""

    def __init__(self, code: str) -> None:
        self.starts = [0]
        pos = code.find("\n")
        while pos >= 0:
            self.starts.append(pos + 1)
            pos = code.find("\n", pos + 1)

    def at(self, offset: int) -> tuple[int, int]:
        line = bisect_right(self.starts, offset)
        return line, offset - self.starts[line - 1]


def _next_at_column_zero(tokens: list[Token], view: str) -> list[int]:
    """For each token index ``k``: the index of the first token after ``k`` that starts a line at column 0."""
    nxt = [len(tokens)] * (len(tokens) + 1)
    for k in range(len(tokens) - 1, -1, -1):
        after = k + 1
        at_zero = after < len(tokens) and (tokens[after].start == 0 or view[tokens[after].start - 1] == "\n")
        nxt[k] = after if at_zero else nxt[after]
    return nxt


def _next_word(tokens: list[Token], word: str) -> list[int]:
    """For each token index ``k``: the index of the first token at or after ``k`` whose text is ``word``."""
    nxt = [len(tokens)] * (len(tokens) + 1)
    for k in range(len(tokens) - 1, -1, -1):
        nxt[k] = k if tokens[k].text == word else nxt[k + 1]
    return nxt


def _kernel_api(parts: tuple[str, ...]) -> bool:
    if any(p in _KERNEL_MEMBERS or p == "Environment" for p in parts):
        return True
    return any(pair in _KERNEL_PREFIXES for pair in pairwise(parts))


def _is_elab_attribute(tok: Token) -> bool:
    return tok.name in _ELAB_ATTRIBUTES or (bool(tok.parts) and tok.parts[-1] in _ELAB_ATTRIBUTES)


def screen_tokens(
    code: str,
    candidate_regions: list[tuple[int, int]],
    preamble_region: tuple[int, int],
    *,
    allow_native: bool = False,
    dialect: Dialect | None = None,
) -> list[Violation]:
    """Every banned construct in the candidate's regions of ``code`` (offsets ``[start, end)``).

    ``code`` is the whole assembled file (trusted header included), lexed once in the header's dialect
    (:func:`~malot.lean.lexer.detect_dialect`). Names are compared as Lean compares them (``«sorryAx»`` is
    ``sorryAx``). Besides banned names, keywords, commands and attributes, it rejects: a lexical error in the
    candidate's part (Lean resumes reading code at the error, so text that looked like a string can run as
    commands), a comment or literal that starts in the candidate's part and runs past it (over the trusted
    statement), and commands written in the literal text of an interpolated string (Lean reads them as code
    after a parse error inside the string's ``{...}``). Linear in ``len(code)``.
    """
    lexed = lex(code, dialect)
    view = lexed.view
    tokens = tokenize(view)
    lines = _Lines(code)
    regions = sorted(candidate_regions)
    out: list[Violation] = []

    def add_at(rule: str, offset: int, message: str) -> None:
        line, col = lines.at(offset)
        out.append(Violation(rule, line, col, message))

    def add(rule: str, tok: Token, message: str) -> None:
        add_at(rule, tok.start, message)

    def region_of(offset: int) -> tuple[int, int] | None:
        k = bisect_right(regions, (offset, len(code) + 1)) - 1
        if k >= 0 and regions[k][0] <= offset < regions[k][1]:
            return regions[k]
        return None

    def inside(offset: int) -> bool:
        return region_of(offset) is not None

    for err in lexed.errors:
        if inside(err.offset) or (err.offset == len(code) and inside(max(err.offset - 1, 0))):
            add_at("lexer", err.offset, f"Lean reports '{err.message}' here and resumes reading code at this point")
    for span in lexed.spans:
        region = region_of(span.start)
        if region is not None and span.end > region[1]:
            add_at(
                "unterminated",
                span.start,
                f"this {span.kind.replace('_', ' ')} runs past the proof's part of the file into trusted text",
            )
        if span.kind == "interpolated_text" and region is not None:
            for tok in tokenize(code[span.start : span.end]):
                if (tok.kind == "command" and tok.text not in _ALLOWED_COMMANDS) or (
                    tok.kind == "ident" and len(tok.parts) == 1 and tok.name in _HIDDEN_COMMAND_WORDS
                ):
                    add_at(
                        "hidden command",
                        span.start + tok.start,
                        f"'{tok.text}' inside an interpolated string runs as code after a parse error in the string",
                    )

    next_zero = _next_at_column_zero(tokens, view)
    next_in = _next_word(tokens, "in")
    attr_depth = 0  # > 0 inside "@[ ... ]" or "attribute [ ... ]"
    attr_first = False  # the next identifier names an attribute
    last_attribute_close = -1
    last_in_preamble = -1  # the preamble's last token: nothing may attach to the trusted statement
    for k, tok in enumerate(tokens):
        if preamble_region[0] <= tok.start < preamble_region[1]:
            last_in_preamble = k
        if tok.text == "@[" or (tok.text == "[" and k > 0 and tokens[k - 1].name == "attribute"):
            attr_depth, attr_first = attr_depth + 1, True
            continue
        if attr_depth:
            if tok.text in ("[", "(", "{"):
                attr_depth += 1
            elif tok.text in ("]", ")", "}"):
                attr_depth -= 1
                if attr_depth == 0:
                    last_attribute_close = k
            elif tok.text == "," and attr_depth == 1:
                attr_first = True
                continue
            elif tok.kind == "ident" and attr_first:
                attr_first = tok.name in ("local", "scoped")
                if _is_elab_attribute(tok) and inside(tok.start):
                    add("elab", tok, f"the attribute @[{tok.name}] registers an elaborator or start-up code")
        if not inside(tok.start):
            continue
        nxt = tokens[k + 1] if k + 1 < len(tokens) else None
        in_preamble = preamble_region[0] <= tok.start < preamble_region[1]
        if tok.kind == "command":
            if tok.text not in _ALLOWED_COMMANDS:
                rule = tok.text if tok.text in ("#exit", "#eval") else "command"
                add(rule, tok, f"the command {tok.text} is not allowed in a proof")
            continue
        if tok.kind == "symbol" and tok.text == "+" and nxt is not None and nxt.name == "native" and not allow_native:
            add("native_decide", tok, "decide +native runs compiled code; allowed only with the native opt-in")
            continue
        if tok.kind != "ident":
            continue
        if _kernel_api(tok.parts):
            add("kernel API", tok, f"{tok.name} reaches into Lean's kernel or environment API")
        else:
            for part in tok.parts:
                if part in _BANNED_NAMES:
                    add(_BANNED_NAMES[part], tok, f"{tok.name} is not allowed in a proof")
                    break
                if part in _NATIVE_NAMES and not allow_native:
                    rule = "native_decide" if part == "native_decide" else f"Lean.{part}"
                    add(rule, tok, f"{tok.name} trusts compiled code; allowed only with the native opt-in")
                    break
        if len(tok.parts) != 1:
            continue
        word = tok.name
        if word in _BANNED_KEYWORDS:
            add(_BANNED_KEYWORDS[word], tok, f"'{word}' is not allowed in a proof")
        elif word == "native" and nxt is not None and nxt.text == ":=" and not allow_native:
            add("native_decide", tok, "native := true runs compiled code; allowed only with the native opt-in")
        elif word == "open":
            end = next_zero[k]
            if nxt is not None and k + 1 < end and nxt.name == "private":
                add("open private", tok, "'open private' exposes private declarations")
            elif in_preamble and next_in[k + 1] < end:
                add("open in", tok, "'open ... in' before the statement changes how the statement elaborates")
        elif in_preamble and word in _BEFORE_STATEMENT:
            rule = _BEFORE_STATEMENT[word]
            if word == "local" and nxt is not None and nxt.name == "instance":
                rule = "local instance"
            add(rule, tok, f"'{word}' before the statement can change what the statement means")
        elif (
            in_preamble
            and word == "set_option"
            and nxt is not None
            and nxt.name.split(".")[0] not in ("maxHeartbeats", "maxRecDepth", "linter")
        ):
            add("set_option before statement", tok, f"set_option {nxt.name} before the statement is not allowed")
    if last_in_preamble >= 0:
        tok = tokens[last_in_preamble]
        if (tok.kind == "ident" and tok.name in _STATEMENT_MODIFIERS) or last_in_preamble == last_attribute_close:
            add("modifies statement", tok, "the text before the statement ends in a modifier or attribute of it")
    return out
