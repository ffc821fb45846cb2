"""Split a Lean file into its commands and read each declaration's parts, on top of the Lean-exact lexer.

Whole-file mode (``malot verify FILE``) needs the target theorem of a user's file *and* the commands before it that
are part of its statement (``universe u``, ``variable (x : Nat)``, ``open ...``). :func:`split_commands` returns
every command with its source span; :class:`Declaration` says what a declaration command declares: the keyword,
the name as Lean compares it (``«h»`` is ``h``), universe parameters (``theorem h.{u, v}``), modifiers
(``private``, ``protected``, ``noncomputable``, ...), attribute names (``@[simp, «deprecated» "..."]``), its doc
comment, and where the signature and the body lie.

Positions come from tokens of the code view, so words inside comments and strings (an attribute string that
mentions ``theorem``) never count. Without a full parser, a command starts at a command keyword that is either at
column 0 or unambiguous anywhere outside brackets (declaration keywords, modifiers, ``@[``, ``#commands``); an
``open ... in`` / ``set_option ... in`` prefix is a command of its own marked :attr:`Command.in_prefix`.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

from malot.lean.lexer import Dialect, Token, lex, tokenize

__all__ = ["DECLARATION_KEYWORDS", "Command", "Declaration", "find_declarations", "split_commands"]

#: Keywords that declare something (``lemma`` is Mathlib's spelling of ``theorem``).
DECLARATION_KEYWORDS = frozenset(
    {
        "theorem",
        "lemma",
        "def",
        "abbrev",
        "instance",
        "example",
        "axiom",
        "opaque",
        "inductive",
        "coinductive",
        "structure",
        "class",
    }
)
_NAMELESS = frozenset({"example"})
_MODIFIERS = frozenset({"private", "protected", "public", "noncomputable", "unsafe", "partial", "nonrec", "meta"})
#: Keywords that start a command when they stand at column 0.
_COMMAND_KEYWORDS = (
    DECLARATION_KEYWORDS
    | _MODIFIERS
    | frozenset(
        {
            "import",
            "prelude",
            "module",
            "universe",
            "variable",
            "omit",
            "include",
            "open",
            "namespace",
            "section",
            "end",
            "set_option",
            "attribute",
            "export",
            "mutual",
            "deriving",
            "macro",
            "macro_rules",
            "syntax",
            "elab",
            "elab_rules",
            "notation",
            "notation3",
            "infix",
            "infixl",
            "infixr",
            "prefix",
            "postfix",
            "initialize",
            "builtin_initialize",
            "run_cmd",
            "run_elab",
            "run_meta",
            "declare_syntax_cat",
            "add_decl_doc",
            "local",
            "scoped",
            "@[",
        }
    )
)
#: Command starters that are unambiguous even when indented (outside brackets).
_STRONG = DECLARATION_KEYWORDS | _MODIFIERS | frozenset({"@["})
#: Tokens that may precede the keyword inside one command (``private noncomputable def``, ``local notation``).
_PREFIX = _MODIFIERS | frozenset({"local", "scoped"})
_OPEN = frozenset({"(", "[", "{", "⟨", "⦃", "@["})
_CLOSE = frozenset({")", "]", "}", "⟩", "⦄"})


@dataclass(frozen=True, slots=True)
class Declaration:
    """What one declaration command declares. Offsets are into the source given to :func:`split_commands`."""

    kind: str
    """The keyword: ``theorem``, ``lemma``, ``def``, ... (``class inductive`` for that two-word form)."""
    name: str | None
    """The declared name as Lean compares it (``«»`` escapes removed per part); None for ``example`` and
    anonymous instances."""
    raw_name: str | None
    """The name as written (``«h»``)."""
    universe_params: tuple[str, ...]
    """Explicit universe parameters of ``NAME.{u, v}``."""
    modifiers: tuple[str, ...]
    """``private``, ``protected``, ``noncomputable``, ... in source order."""
    attributes: tuple[str, ...]
    """Attribute names from ``@[...]`` (normalised; ``local``/``scoped`` dropped), in source order."""
    keyword_start: int
    """Offset of the keyword."""
    name_end: int
    """Offset just past the name and its universe parameters (just past the keyword when nameless)."""
    signature_end: int | None
    """Offset of the ``:=``, ``|`` or ``where`` that ends the signature (None: the command has none)."""
    body_start: int | None
    """Offset just past that ``:=`` / ``where`` (at the ``|`` for equations); None when there is no body."""

    def statement(self, source: str) -> str | None:
        """The statement as a target: ``theorem NAME.{u} binders : type :=`` taken from ``source`` by offsets (so
        attribute strings and comments before the keyword cannot garble it), ``lemma`` spelled ``theorem``;
        modifiers, attributes and the doc comment left out. None without a ``:=`` or for nameless declarations."""
        end = self.signature_end
        if end is None or self.name is None or source[end : end + 2] != ":=":
            return None
        keyword = "theorem" if self.kind == "lemma" else self.kind
        head = source[self.keyword_start : end].rstrip()
        return keyword + head[len(self.kind) :] + " :="


@dataclass(frozen=True, slots=True)
class Command:
    """One command of a file: ``[start, end)`` covers its doc comment, attributes and modifiers, up to the next
    command (trailing whitespace and comments included)."""

    kind: str
    """The command keyword (``theorem``, ``universe``, ``variable``, ``open``, ``#print``, ...); ``""`` for text
    that starts with no known command keyword (for example code before the first command)."""
    start: int
    end: int
    doc_comment: tuple[int, int] | None = None
    """Span of the ``/-- ... -/`` doc comment in front of it."""
    in_prefix: bool = False
    """True for an ``open ... in`` / ``set_option ... in`` that prefixes the next command."""
    declaration: Declaration | None = None

    def text(self, source: str) -> str:
        """The command's source text."""
        return source[self.start : self.end]


def _at_column_zero(view: str, tok: Token) -> bool:
    return tok.start == 0 or view[tok.start - 1] == "\n"


def _command_starts(tokens: list[Token], view: str) -> list[tuple[int, int]]:
    """(first token index, keyword token index) of each command."""
    starts: list[tuple[int, int]] = []
    depth = 0
    in_prefix = False  # inside modifiers/attributes that precede a command keyword
    after_in = False  # the previous token ended an "open ... in" prefix
    k = 0
    while k < len(tokens):
        tok = tokens[k]
        word = tok.name if tok.kind == "ident" else tok.text
        is_starter = depth == 0 and (
            tok.kind == "command"
            or word in _STRONG
            or (word in _COMMAND_KEYWORDS and _at_column_zero(view, tok))
            or ((after_in or in_prefix) and word in _COMMAND_KEYWORDS)
        )
        after_in = False
        if is_starter and word == "inductive" and k > 0 and tokens[k - 1].name == "class":
            is_starter = False  # "class inductive" is one keyword
        if is_starter and in_prefix:
            if word in _PREFIX or word == "@[":
                pass
            else:
                starts[-1] = (starts[-1][0], k)
                in_prefix = False
        elif is_starter:
            starts.append((k, k))
            in_prefix = word in _PREFIX or word == "@["
        elif in_prefix and depth == 0 and tok.text not in _OPEN and tok.text not in _CLOSE:
            in_prefix = False
        if tok.text in _OPEN:
            depth += 1
        elif tok.text in _CLOSE:
            depth = max(0, depth - 1)
        if tok.text == "in" and depth == 0 and starts and tokens[starts[-1][1]].name in ("open", "set_option"):
            after_in = True  # "open ... in": the next command keyword starts the prefixed command
        k += 1
    return starts


def _parse_declaration(tokens: list[Token], view: str, first: int, kw: int, last: int) -> Declaration | None:
    """Read the declaration whose tokens are ``tokens[first:last]`` with the keyword at ``kw``."""
    keyword = tokens[kw]
    kind = keyword.name
    if kind not in DECLARATION_KEYWORDS:
        return None
    modifiers = tuple(t.name for t in tokens[first:kw] if t.kind == "ident" and t.name in _MODIFIERS)
    attributes: list[str] = []
    depth, expect_name = 0, False
    for t in tokens[first:kw]:
        if t.text == "@[":
            depth, expect_name = 1, True
        elif depth and t.text in _OPEN:
            depth += 1
        elif depth and t.text in _CLOSE:
            depth -= 1
        elif depth == 1 and t.text == ",":
            expect_name = True
        elif depth and expect_name and t.kind == "ident" and t.name not in ("local", "scoped"):
            attributes.append(t.name)
            expect_name = False
    j = kw + 1
    if kind == "class" and j < last and tokens[j].name == "inductive":
        kind, j = "class inductive", j + 1
    name: str | None = None
    raw_name: str | None = None
    name_end = keyword.end if j == kw + 1 else tokens[j - 1].end
    if kind == "instance" and j < last and tokens[j].text == "(":  # instance (priority := ...)
        d = 0
        while j < last:
            d += tokens[j].text in _OPEN
            d -= tokens[j].text in _CLOSE
            j += 1
            if d == 0:
                break
        name_end = tokens[j - 1].end
    universes: list[str] = []
    if kind not in _NAMELESS and j < last and tokens[j].kind == "ident":
        name, raw_name, name_end = tokens[j].name, tokens[j].text, tokens[j].end
        j += 1
        if (
            j + 1 < last
            and tokens[j].text == "."
            and tokens[j + 1].text == "{"
            and tokens[j + 1].start == tokens[j].end
        ):
            j += 2
            while j < last and tokens[j].text != "}":
                if tokens[j].kind == "ident":
                    universes.append(tokens[j].name)
                j += 1
            name_end = tokens[j].end if j < last else tokens[last - 1].end
            j += 1
    signature_end: int | None = None
    body_start: int | None = None
    depth = 0
    for t in tokens[j:last]:
        if t.text in _OPEN:
            depth += 1
        elif t.text in _CLOSE:
            depth = max(0, depth - 1)
        elif depth == 0 and t.text in (":=", "|", "where"):
            signature_end = t.start
            body_start = t.start if t.text == "|" else t.end
            break
    return Declaration(
        kind=kind,
        name=name,
        raw_name=raw_name,
        universe_params=tuple(universes),
        modifiers=modifiers,
        attributes=tuple(attributes),
        keyword_start=keyword.start,
        name_end=name_end,
        signature_end=signature_end,
        body_start=body_start,
    )


def split_commands(code: str, dialect: Dialect | None = None) -> list[Command]:
    """The commands of ``code`` in order, each with its span and, for declarations, a :class:`Declaration`.

    Text before the first command keyword (if any besides whitespace and comments) is a command of kind ``""``.
    """
    lexed = lex(code, dialect)
    view = lexed.view
    tokens = tokenize(view)
    starts = _command_starts(tokens, view)
    token_starts = [t.start for t in tokens]
    docs = {}
    for span in lexed.spans:
        if span.kind == "doc_comment":
            k = bisect_left(token_starts, span.end)
            docs[k] = (span.start, span.end)
    commands: list[Command] = []
    if starts and starts[0][0] > 0:
        commands.append(Command("", tokens[0].start, tokens[starts[0][0]].start))
    elif not starts and tokens:
        commands.append(Command("", tokens[0].start, len(code)))
    for idx, (first, kw) in enumerate(starts):
        last = starts[idx + 1][0] if idx + 1 < len(starts) else len(tokens)
        if first >= len(tokens):
            continue
        doc = docs.get(first)
        start = doc[0] if doc else tokens[first].start
        nxt_first = starts[idx + 1][0] if idx + 1 < len(starts) else None
        if nxt_first is not None and nxt_first < len(tokens):
            nxt_doc = docs.get(nxt_first)
            end = nxt_doc[0] if nxt_doc else tokens[nxt_first].start
        else:
            end = len(code)
        keyword = tokens[kw]
        kind = keyword.name if keyword.kind == "ident" else keyword.text
        in_prefix = kind in ("open", "set_option") and tokens[last - 1].text == "in"
        declaration = _parse_declaration(tokens, view, first, kw, last) if kind in DECLARATION_KEYWORDS else None
        if declaration is not None:
            kind = declaration.kind
        commands.append(Command(kind, start, end, doc, in_prefix, declaration))
    return commands


def find_declarations(code: str, dialect: Dialect | None = None) -> list[Declaration]:
    """Every declaration of ``code`` in source order (see :func:`split_commands`)."""
    return [c.declaration for c in split_commands(code, dialect) if c.declaration is not None]
