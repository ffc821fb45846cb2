"""The source screen: constructs a proof may not contain, found in the code with comments and strings removed.

It runs on the assembled file (so the lexer sees what Lean sees) but judges only the model's parts: the preamble
before the statement and the proof after it. The trusted header and statement are skipped. Each finding is a
:class:`Violation` whose ``rule`` names the banned construct, so a rejection always says *why*.
"""

from __future__ import annotations

from dataclasses import dataclass

from malot.lean.lexer import Token, code_view, tokenize

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
}
#: Identifier parts that reach into the elaborator or kernel API (metaprograms that could add unchecked
#: declarations); a proof has no business naming them.
_META_NAMES = {
    "addDecl": "kernel API",
    "addDeclWithoutChecking": "kernel API",
    "addAndCompile": "kernel API",
    "Environment": "kernel API",
    "Kernel": "kernel API",
    "modifyEnv": "kernel API",
    "setEnv": "kernel API",
}
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
    }
)
#: ``#commands`` a proof may use; every other one is rejected (``#exit``/``#eval`` by name).
_ALLOWED_COMMANDS = frozenset({"#check", "#print"})
#: Keywords that change how the statement elaborates when they come before it.
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


def _line_col(code: str, offset: int) -> tuple[int, int]:
    line = code.count("\n", 0, offset) + 1
    return line, offset - (code.rfind("\n", 0, offset) + 1)


def _command_end(tokens: list[Token], k: int, view: str) -> int:
    """Index just past the command starting at token ``k``: it ends before the next token at column 0."""
    j = k + 1
    while j < len(tokens) and not (tokens[j].start == 0 or view[tokens[j].start - 1] == "\n"):
        j += 1
    return j


def screen_tokens(
    code: str,
    candidate_regions: list[tuple[int, int]],
    preamble_region: tuple[int, int],
    *,
    allow_native: bool = False,
) -> list[Violation]:
    """Every banned construct in the candidate's regions of ``code`` (offsets ``[start, end)``)."""
    view = code_view(code)
    tokens = tokenize(view)
    out: list[Violation] = []

    def add(rule: str, tok: Token, message: str) -> None:
        line, col = _line_col(code, tok.start)
        out.append(Violation(rule, line, col, message))

    def inside(tok: Token, region: tuple[int, int]) -> bool:
        return region[0] <= tok.start < region[1]

    attr_depth = 0  # > 0 inside "@[ ... ]" or "attribute [ ... ]"
    attr_first = False  # the next identifier names an attribute
    for k, tok in enumerate(tokens):
        if tok.text == "@[" or (tok.text == "[" and k > 0 and tokens[k - 1].text == "attribute"):
            attr_depth, attr_first = attr_depth + 1, True
            continue
        if attr_depth:
            if tok.text in ("[", "(", "{"):
                attr_depth += 1
            elif tok.text in ("]", ")", "}"):
                attr_depth -= 1
            elif tok.text == "," and attr_depth == 1:
                attr_first = True
                continue
            elif tok.kind == "ident" and attr_first:
                attr_first = tok.text in ("local", "scoped", "-")
                if tok.text in _ELAB_ATTRIBUTES and any(inside(tok, r) for r in candidate_regions):
                    add("elab", tok, f"the attribute @[{tok.text}] registers an elaborator or start-up code")
        if not any(inside(tok, r) for r in candidate_regions):
            continue
        nxt = tokens[k + 1] if k + 1 < len(tokens) else None
        in_preamble = inside(tok, preamble_region)
        if tok.kind == "command":
            if tok.text not in _ALLOWED_COMMANDS:
                rule = tok.text if tok.text in ("#exit", "#eval") else "command"
                add(rule, tok, f"the command {tok.text} is not allowed in a proof")
            continue
        if tok.kind == "symbol" and tok.text == "+" and nxt is not None and nxt.text == "native" and not allow_native:
            add("native_decide", tok, "decide +native runs compiled code; allowed only with the native opt-in")
            continue
        if tok.kind != "ident":
            continue
        for part in tok.parts:
            if part in _META_NAMES:
                add(_META_NAMES[part], tok, f"{tok.text} reaches into Lean's kernel or environment API")
                break
            if part in _BANNED_NAMES:
                rule = _BANNED_NAMES[part]
                add(rule, tok, f"{tok.text} is not allowed in a proof")
                break
            if part in _NATIVE_NAMES and not allow_native:
                rule = "native_decide" if part == "native_decide" else f"Lean.{part}"
                add(rule, tok, f"{tok.text} trusts compiled code; allowed only with the native opt-in")
                break
        if len(tok.parts) != 1:
            continue
        word = tok.text
        if word in _BANNED_KEYWORDS:
            add(_BANNED_KEYWORDS[word], tok, f"'{word}' is not allowed in a proof")
        elif word == "native" and nxt is not None and nxt.text == ":=" and not allow_native:
            add("native_decide", tok, "native := true runs compiled code; allowed only with the native opt-in")
        elif word == "open":
            end = _command_end(tokens, k, view)
            words = [t.text for t in tokens[k + 1 : end]]
            if words[:1] == ["private"]:
                add("open private", tok, "'open private' exposes private declarations")
            elif in_preamble and "in" in words:
                add("open in", tok, "'open ... in' before the statement changes how the statement elaborates")
        elif in_preamble and word in _BEFORE_STATEMENT:
            rule = _BEFORE_STATEMENT[word]
            if word == "local" and nxt is not None and nxt.text == "instance":
                rule = "local instance"
            add(rule, tok, f"'{word}' before the statement can change what the statement means")
        elif (
            in_preamble
            and word == "set_option"
            and nxt is not None
            and nxt.text.split(".")[0]
            not in (
                "maxHeartbeats",
                "maxRecDepth",
                "linter",
            )
        ):
            add("set_option before statement", tok, f"set_option {nxt.text} before the statement is not allowed")
    return out
