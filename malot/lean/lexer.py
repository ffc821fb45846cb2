"""A Lean 4 lexer for the source screen: find comments, string literals and code exactly where Lean does.

The screen must not be fooled in either direction: ``sorry`` inside a comment or a string is harmless, while code
hidden after a cleverly nested comment is not. So this module follows Lean's own tokenizer (``Lean.Parser.Basic``
and ``Lean.Parser.Types``, checked against a real Lean 4.35, see ``tests/lean/test_lexer.py``):

* ``--`` line comments run to ``\\n`` (only ``\\n`` ends a line for Lean, not ``\\u2028``);
* ``/- ... -/`` block comments *nest*; the character right after an opening ``/-`` is skipped unread, so
  ``/-/- x -/`` is one level; ``/--`` and ``/-!`` start doc comments (same body rules, nothing skipped);
* ``"..."`` string literals with the escapes ``\\\\ \\" \\' \\n \\t \\r``, ``\\xHH``, ``\\uHHHH`` (exactly four hex
  digits; ``\\u{..}`` is an error) and string gaps (``\\`` + newline);
* raw strings ``r"..."``, ``r#"..."#`` with any number of ``#`` (no escapes; the first ``"`` followed by as many
  ``#`` closes them);
* character literals: a ``'`` that *starts a token* and is not followed by another ``'``; inside identifiers
  (``h'``) a ``'`` is part of the name;
* identifiers with ``«escaped»`` parts (any characters but ``»``, newlines included); ``«sorryAx»`` *is*
  ``sorryAx`` (:attr:`Token.name`);
* interpolated strings: only where a parser reads ``interpolatedStr`` -- after ``s!``, ``f!``, ``println!``,
  ``dbg_trace``, ``m!``, ``throwError``, ``throwErrorAt REF``, ``trace[cls]`` ... (see :class:`Dialect`; which of
  these exist depends on the imports, so ``s!`` is a plain identifier in a ``prelude`` file). A string after any
  other ``!`` (``panic!"{ /- "``) is a plain string. Comments and whitespace may stand between the keyword and the
  string (``s! "..."`` interpolates). Inside ``{...}`` the text is code (strings, comments and nested braces
  included); ``\\{`` escapes a brace.

Lean reports a *lexical error* (an invalid escape, an unterminated string, comment, raw string, character literal
or ``«``, a tab between tokens) and then resumes reading **code** at the error position -- so text that looked like
the inside of a string can run as commands (``"\\q #exit"`` runs ``#exit``). The lexer records every such error in
:attr:`Lexed.errors` and resumes where Lean does; the screen rejects any candidate with a lexical error.

:func:`lex` does one linear pass (no recursion, so deeply nested interpolation cannot overflow the stack) and
returns the *code view* (every character position kept; comments, string contents, raw strings and character
literals become spaces; newlines stay), the comment and literal spans, and the errors. :func:`tokenize` splits a
view into identifiers, ``#commands``, numbers and symbols.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = [
    "FULL",
    "INIT",
    "PRELUDE",
    "Dialect",
    "LexError",
    "Lexed",
    "Span",
    "Token",
    "code_view",
    "detect_dialect",
    "is_id_first",
    "is_id_rest",
    "lex",
    "normalize_name",
    "tokenize",
]


def _is_letter_like(c: str) -> bool:
    o = ord(c)
    return (
        (0x3B1 <= o <= 0x3C9 and o != 0x3BB)
        or (0x391 <= o <= 0x3A9 and o not in (0x3A0, 0x3A3))
        or 0x3CA <= o <= 0x3FB
        or 0x1F00 <= o <= 0x1FFE
        or 0x2100 <= o <= 0x214F
        or 0x1D49C <= o <= 0x1D59F
    )


def _is_subscript(c: str) -> bool:
    o = ord(c)
    return 0x2080 <= o <= 0x208C or 0x2090 <= o <= 0x209C or 0x1D62 <= o <= 0x1D6A


_ASCII_ID_FIRST = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_ASCII_ID_REST = _ASCII_ID_FIRST | frozenset("0123456789'!?")
_ASCII_ID_RUN = re.compile(r"[A-Za-z0-9_'!?]*")
_SPACE_RUN = re.compile(r"\s*")


def is_id_first(c: str) -> bool:
    """Can ``c`` start a Lean identifier (ASCII letter, ``_``, or Lean's letter-like Unicode ranges)?"""
    if c in _ASCII_ID_FIRST:
        return True
    return len(c) == 1 and ord(c) > 127 and _is_letter_like(c)


def is_id_rest(c: str) -> bool:
    """Can ``c`` continue a Lean identifier?"""
    if c in _ASCII_ID_REST:
        return True
    return len(c) == 1 and ord(c) > 127 and (_is_letter_like(c) or _is_subscript(c))


def _id_rest_end(text: str, j: int) -> int:
    """The end of the run of identifier characters starting at ``j``."""
    n = len(text)
    while True:
        j = _ASCII_ID_RUN.match(text, j).end()  # type: ignore[union-attr]
        if j < n and ord(text[j]) > 127 and is_id_rest(text[j]):
            j += 1
        else:
            return j


def normalize_name(name: str) -> str:
    """A dotted Lean name as Lean compares it: ``«»`` escapes removed per component (``«a».b`` is ``a.b``)."""
    parts: list[str] = []
    i, n = 0, len(name)
    while i < n:
        if name[i] == "«":
            j = name.find("»", i + 1)
            j = n if j < 0 else j
            parts.append(name[i + 1 : j])
            i = j + 1
        else:
            j = i
            while j < n and name[j] != ".":
                j += 1
            parts.append(name[i:j])
            i = j
        if i < n and name[i] == ".":
            i += 1
    return ".".join(parts)


@dataclass(frozen=True, slots=True)
class Dialect:
    """Which keywords make Lean read the following string as an *interpolated* string.

    The set depends on the imports: ``dbg_trace`` is a builtin parser (always there); ``s!``, ``f!`` and
    ``println!`` come with ``Init``; ``m!``, ``throwError``, ``trace[...]`` and friends with ``Lean`` (so with
    Mathlib). In a ``prelude`` file ``s!`` is just an identifier and ``s!"{ /- "`` a plain string.
    """

    name: str
    #: ``KW "..."``: the string right after the keyword (comments/whitespace between allowed).
    direct: frozenset[str]
    #: ``KW[ident] "..."``: identifiers that, written directly before ``[``, form one token such as ``trace[``.
    bracket: frozenset[str] = frozenset()
    #: ``KW term:max "..."``: the string after one argument (``throwErrorAt ref "..."``).
    after_argument: frozenset[str] = frozenset()


PRELUDE = Dialect("prelude", frozenset({"dbg_trace"}))
INIT = Dialect("init", frozenset({"dbg_trace", "s!", "f!", "println!"}))
FULL = Dialect(
    "full",
    frozenset({"dbg_trace", "s!", "f!", "println!", "m!", "throwError", "reportIssue!"}),
    bracket=frozenset({"trace", "trace_goal", "aesop_trace!"}),
    after_argument=frozenset({"throwErrorAt", "throwErrorAt?"}),
)


@dataclass(frozen=True, slots=True)
class LexError:
    """A lexical error Lean reports at ``offset`` (it resumes reading code there)."""

    offset: int
    message: str


@dataclass(frozen=True, slots=True)
class Span:
    """A comment or literal ``[start, end)``; ``kind`` is one of ``line_comment``, ``block_comment``,
    ``doc_comment``, ``module_doc``, ``string``, ``raw_string``, ``char``, ``interpolated_string`` (the whole
    literal, code parts included) or ``interpolated_text`` (one literal piece of it)."""

    start: int
    end: int
    kind: str


@dataclass
class Lexed:
    """The result of :func:`lex`: the code view, comment/literal spans (in source order) and lexical errors."""

    source: str
    view: str
    dialect: Dialect
    spans: list[Span] = field(default_factory=list)
    errors: list[LexError] = field(default_factory=list)


_HEX = frozenset("0123456789abcdefABCDEF")
_QUOTABLE = frozenset("\\\"'rnt")
_OPENERS = {"(": ")", "[": "]", "{": "}", "⟨": "⟩", "⦃": "⦄"}

# interpolation expectations of a code frame
_NONE, _NEXT, _BRACKET, _ARGUMENT, _ARGUMENT_GROUP = range(5)


class _Frame:
    """One code context: the top level, or the ``{...}`` part of an interpolated string."""

    __slots__ = ("depth", "expect", "group_close", "group_depth", "string_start", "top")

    def __init__(self, top: bool, string_start: int = -1) -> None:
        self.top = top
        self.depth = 0  # open "{" inside an interpolation part
        self.expect = _NONE
        self.group_depth = 0
        self.group_close = ""
        self.string_start = string_start


class _Lexer:
    def __init__(self, src: str, dialect: Dialect) -> None:
        self.src = src
        self.n = len(src)
        self.dialect = dialect
        self.out = list(src)
        self.spans: list[Span] = []
        self.errors: list[LexError] = []

    # --- helpers --------------------------------------------------------------------------------------------

    def blank(self, start: int, end: int) -> None:
        out = self.out
        for k in range(start, min(end, self.n)):
            if out[k] != "\n":
                out[k] = " "

    def error(self, offset: int, message: str) -> None:
        self.errors.append(LexError(offset, message))

    def escape(self, i: int, interpolated: bool) -> int:
        """``i`` is just after a backslash in a string; return the index after the escape, or record an error
        and return the offset where Lean resumes (negated minus one, so callers can tell)."""
        src, n = self.src, self.n
        if i >= n:
            self.error(i, "unterminated string literal")
            return -1 - n
        c = src[i]
        if c in _QUOTABLE or (interpolated and c == "{"):
            return i + 1
        if c == "\n":  # a string gap: backslash, newline, indentation
            return i + 1
        if c == "\r" and i + 1 < n and src[i + 1] == "\n":
            return i + 2
        if c in "xu":
            want = 2 if c == "x" else 4
            j = i + 1
            for _ in range(want):
                if j >= n or src[j] not in _HEX:
                    self.error(j, "invalid hexadecimal numeral")
                    return -1 - j
                j += 1
            return j
        self.error(i, "invalid escape sequence")
        return -1 - i

    # --- literals -------------------------------------------------------------------------------------------

    def plain_string(self, i: int) -> int:
        """``i`` is at the opening ``"``; return where code resumes."""
        src, n = self.src, self.n
        j = i + 1
        while j < n:
            c = src[j]
            if c == '"':
                self.blank(i + 1, j)
                self.spans.append(Span(i, j + 1, "string"))
                return j + 1
            if c == "\\":
                k = self.escape(j + 1, interpolated=False)
                if k < 0:
                    self.blank(i + 1, -1 - k)
                    return -1 - k
                j = k
            else:
                j += 1
        self.error(i, "unterminated string literal")
        return i + 1  # Lean resumes reading code right after the quote

    def raw_string(self, i: int, hashes: int) -> int:
        """``i`` is at the ``r`` of ``r##"``; return where code resumes."""
        body = i + 2 + hashes
        close = '"' + "#" * hashes
        j = self.src.find(close, body)
        if j < 0:
            self.error(i, "unterminated raw string literal")
            return i + 1  # Lean resumes reading code right after the "r" (so at "#..." or at a plain string)
        end = j + len(close)
        self.blank(i, end)
        self.spans.append(Span(i, end, "raw_string"))
        return end

    def char_literal(self, i: int) -> int:
        """``i`` is at a ``'`` that starts a token (not followed by ``'``); return where code resumes."""
        src, n = self.src, self.n
        j = i + 1
        if j >= n:
            self.error(j, "unexpected end of input")
            return n
        if src[j] == "\\":
            k = self.escape(j + 1, interpolated=False)
            if k < 0:
                self.blank(i, -1 - k)
                return -1 - k
            j = k
        else:
            j += 1
        if j < n and src[j] == "'":
            self.blank(i, j + 1)
            self.spans.append(Span(i, j + 1, "char"))
            return j + 1
        end = min(j + 1, n)  # Lean consumed the character where the closing quote should be
        self.error(end, "missing end of character literal")
        self.blank(i, end)
        return end

    def block_comment(self, i: int) -> int:
        """``i`` is at ``/-``; return the index after the closing ``-/`` (nesting), or the end of input."""
        src, n = self.src, self.n
        nxt = src[i + 2] if i + 2 < n else ""
        kind = "doc_comment" if nxt == "-" else "module_doc" if nxt == "!" else "block_comment"
        j = i + 3  # doc comments start after "/--" / "/-!"; a plain "/-" skips one character unread
        nesting = 1
        while j < n:
            c = src[j]
            if c == "-" and j + 1 < n and src[j + 1] == "/":
                nesting -= 1
                j += 2
                if nesting == 0:
                    self.blank(i, j)
                    self.spans.append(Span(i, j, kind))
                    return j
            elif c == "/" and j + 1 < n and src[j + 1] == "-":
                nesting += 1
                j += 2
            else:
                j += 1
        self.error(i, "unterminated comment")
        self.blank(i, n)
        self.spans.append(Span(i, n, kind))
        return n

    # --- identifiers and numbers ----------------------------------------------------------------------------

    def identifier(self, i: int) -> tuple[int, str]:
        """``i`` starts an identifier (letter or ``«``); return its end and its raw text."""
        src, n = self.src, self.n
        j = i
        while j < n:
            if src[j] == "«":
                k = src.find("»", j + 1)
                if k < 0:
                    self.error(j + 1, "unterminated identifier escape")
                    self.blank(i, j + 1)  # Lean resumes reading code after the "«"
                    return j + 1, src[i : j + 1]
                j = k + 1
            else:
                j = _id_rest_end(src, j + 1)
            if j + 1 < n and src[j] == "." and (is_id_first(src[j + 1]) or src[j + 1] == "«"):
                j += 1
            else:
                break
        return j, src[i:j]

    def number(self, i: int) -> int:
        src, n = self.src, self.n
        if src[i] == "0" and i + 1 < n and src[i + 1] in "bBoOxX":
            j = i + 2
            digits = {"b": "01", "o": "01234567", "x": "0123456789abcdefABCDEF"}[src[i + 1].lower()]
            while j < n and src[j] in digits:
                j += 1
            if j == i + 2:
                self.error(j, "missing digits in numeral")
            return j
        j = i
        while j < n and src[j].isascii() and src[j].isdigit():
            j += 1
        if j < n and src[j] == ".":
            j += 1
            while j < n and src[j].isascii() and src[j].isdigit():
                j += 1
        if j < n and src[j] in "eE":
            k = j + 1
            if k < n and src[k] in "+-":
                k += 1
            if k < n and src[k].isascii() and src[k].isdigit():
                while k < n and src[k].isascii() and src[k].isdigit():
                    k += 1
                j = k
            elif j > i and (src[j - 1].isdigit() or src[j - 1] == "."):
                self.error(k, "missing exponent digits in scientific literal")
                j = k
        return j

    # --- the main loop --------------------------------------------------------------------------------------

    def skip_space(self, i: int) -> int:
        """Skip whitespace and (non-doc) comments the way Lean's ``whitespace`` does; doc comments too (the
        view blanks them alike)."""
        src, n = self.src, self.n
        while i < n:
            c = src[i]
            if c == " " or c == "\n" or c == "\r":
                i += 1
            elif c == "\t":
                self.error(i, "tabs are not allowed")
                i += 1
            elif c == "-" and i + 1 < n and src[i + 1] == "-":
                j = src.find("\n", i)
                j = n if j < 0 else j
                self.blank(i, j)
                self.spans.append(Span(i, j, "line_comment"))
                i = j
            elif c == "/" and i + 1 < n and src[i + 1] == "-":
                i = self.block_comment(i)
            else:
                break
        return i

    def run(self) -> None:
        src, n, dialect = self.src, self.n, self.dialect
        stack: list[_Frame] = [_Frame(top=True)]
        text_start = -1  # >= 0 while inside the literal text of an interpolated string
        i = 0
        while i < n:
            if text_start >= 0:
                i, text_start = self.interpolated_text(i, text_start, stack)
                continue
            frame = stack[-1]
            i = self.skip_space(i)
            if i >= n:
                break
            c = src[i]
            expect = frame.expect
            frame.expect = _NONE
            if c == '"':
                if expect == _NEXT:
                    self.spans.append(Span(i, i, "interpolated_string"))  # end patched when it closes
                    stack.append(_Frame(top=False, string_start=len(self.spans) - 1))
                    stack[-1].depth = -1  # marks "literal text" mode owner
                    text_start = i + 1
                    i += 1
                    continue
                i = self.plain_string(i)
                self.after_operand(frame, expect)
                continue
            if c == "'" and not (i + 1 < n and src[i + 1] == "'"):
                i = self.char_literal(i)
                self.after_operand(frame, expect)
                continue
            if c == "`" and i + 1 < n and (is_id_first(src[i + 1]) or src[i + 1] == "«"):
                i, _ = self.identifier(i + 1)  # a name literal: never a keyword
                self.after_operand(frame, expect)
                continue
            if c == "#" and i + 1 < n and src[i + 1].isascii() and src[i + 1].isalpha():
                i += 1  # a "#command" token: Lean's token table holds "#" + letters, digits and "_"
                while i < n and src[i].isascii() and (src[i].isalnum() or src[i] == "_"):
                    i += 1
                continue
            if c.isascii() and c.isdigit():
                i = self.number(i)
                self.after_operand(frame, expect)
                continue
            if c == "r" and i + 1 < n and src[i + 1] in '"#':
                k = i + 1
                while k < n and src[k] == "#":
                    k += 1
                if k < n and src[k] == '"':
                    i = self.raw_string(i, k - i - 1)
                    self.after_operand(frame, expect)
                    continue
            if is_id_first(c) or c == "«":
                i, word = self.identifier(i)
                if c != "«" and i < n and src[i] == "[" and word in dialect.bracket:
                    frame.expect, frame.group_depth, frame.group_close = _BRACKET, 1, "]"
                    i += 1
                elif c != "«" and word in dialect.direct:
                    frame.expect = _NEXT
                elif c != "«" and word in dialect.after_argument:
                    frame.expect = _ARGUMENT
                else:
                    self.after_operand(frame, expect)
                continue
            # a symbol
            if c == "»" or (c == "\\" and dialect is PRELUDE):
                # no token starts here ("\\" is Init's set difference): Lean reports an error and re-reads the text
                # after it character by character, so later string boundaries are no longer certain
                self.error(i, "expected token")
            i += 1
            if not frame.top and frame.depth >= 0:
                if c == "{":
                    frame.depth += 1
                elif c == "}":
                    if frame.depth == 0:
                        stack.pop()  # back to the literal text of the interpolated string
                        owner = stack[-1]
                        owner.expect = _NONE
                        text_start = i
                        continue
                    frame.depth -= 1
            if expect in (_BRACKET, _ARGUMENT_GROUP):
                if c == frame.group_close and frame.group_depth == 1:
                    frame.expect = _NEXT
                else:
                    if c == frame.group_close:
                        frame.group_depth -= 1
                    elif _OPENERS.get(c) == frame.group_close:
                        frame.group_depth += 1
                    frame.expect = expect
            elif expect == _ARGUMENT and c in _OPENERS:
                frame.expect, frame.group_depth, frame.group_close = _ARGUMENT_GROUP, 1, _OPENERS[c]
        if text_start >= 0 or len(stack) > 1:
            # an interpolated string left open at the end of input
            owner = next(f for f in stack if not f.top)
            span = self.spans[owner.string_start]
            self.spans[owner.string_start] = Span(span.start, n, span.kind)
            self.error(span.start, "unterminated string literal")
            if text_start >= 0:
                self.blank(text_start, n)
                self.spans.append(Span(text_start, n, "interpolated_text"))

    def after_operand(self, frame: _Frame, expect: int) -> None:
        """A complete operand was read: in ``throwErrorAt REF "..."`` the string after ``REF`` interpolates;
        inside a bracket group the expectation continues."""
        if expect == _ARGUMENT:
            frame.expect = _NEXT
        elif expect in (_BRACKET, _ARGUMENT_GROUP):
            frame.expect = expect

    def interpolated_text(self, i: int, text_start: int, stack: list[_Frame]) -> tuple[int, int]:
        """Scan literal text of an interpolated string from ``i``; return the next index and the new
        ``text_start`` (-1 once the text ends at ``{`` or the closing quote)."""
        src, n = self.src, self.n
        owner = stack[-1]
        while i < n:
            c = src[i]
            if c == '"':
                self.blank(text_start, i)
                self.spans.append(Span(text_start, i, "interpolated_text"))
                span = self.spans[owner.string_start]
                self.spans[owner.string_start] = Span(span.start, i + 1, span.kind)
                stack.pop()
                return i + 1, -1
            if c == "{":
                self.blank(text_start, i)
                self.spans.append(Span(text_start, i, "interpolated_text"))
                stack.append(_Frame(top=False))
                return i + 1, -1
            if c == "\\":
                k = self.escape(i + 1, interpolated=True)
                if k < 0:
                    # Lean resumes reading code at the error: the string is over for it
                    self.blank(text_start, -1 - k)
                    self.spans.append(Span(text_start, -1 - k, "interpolated_text"))
                    span = self.spans[owner.string_start]
                    self.spans[owner.string_start] = Span(span.start, -1 - k, span.kind)
                    stack.pop()
                    return -1 - k, -1
                i = k
            else:
                i += 1
        return n, text_start


def detect_dialect(src: str) -> Dialect:
    """The interpolation keywords the file's header makes available: ``prelude`` files have only the builtin
    ``dbg_trace``; files importing only ``Init`` modules have Init's; anything else (Mathlib, Lean) all.

    A snippet with no header at all (a model's proof without the problem's header) gets :data:`FULL`, the
    MiniF2F case; lex such a snippet with ``dialect=detect_dialect(header)`` to use the header's own rules."""
    lexer = _Lexer(src, PRELUDE)
    i = lexer.skip_space(0)
    imports: list[str] = []
    while i < lexer.n:
        i, word = lexer.identifier(i) if is_id_first(src[i]) else (i, "")
        if word in ("module", "public", "meta", "private"):
            i = lexer.skip_space(i)
            continue
        if word == "prelude":
            return PRELUDE
        if word != "import":
            break
        i = lexer.skip_space(i)
        if i < lexer.n and (is_id_first(src[i]) or src[i] == "«"):
            i, module = lexer.identifier(i)
            imports.append(normalize_name(module))
        i = lexer.skip_space(i)
    if imports and all(m == "Init" or m.startswith("Init.") for m in imports):
        return INIT
    return FULL


def lex(src: str, dialect: Dialect | None = None) -> Lexed:
    """Lex ``src`` as Lean does (``dialect`` defaults to :func:`detect_dialect` of ``src``): the code view,
    the comment/literal spans, and the lexical errors. Linear in ``len(src)``."""
    dialect = detect_dialect(src) if dialect is None else dialect
    lexer = _Lexer(src, dialect)
    lexer.run()
    spans = sorted(lexer.spans, key=lambda s: (s.start, -s.end))
    return Lexed(src, "".join(lexer.out), dialect, spans, lexer.errors)


def code_view(src: str, dialect: Dialect | None = None) -> str:
    """``src`` with comments, doc comments and string/char literals replaced by spaces (newlines and length kept).

    String quotes and the ``{...}`` code of interpolated strings stay visible."""
    return lex(src, dialect).view


@dataclass(frozen=True, slots=True)
class Token:
    """One token of a code view: its text, start offset, kind, and for identifiers the name parts."""

    text: str
    start: int
    kind: str  # "ident", "command" (#word), "number", "symbol"
    parts: tuple[str, ...] = ()

    @property
    def end(self) -> int:
        """Offset just past the token."""
        return self.start + len(self.text)

    @property
    def name(self) -> str:
        """For identifiers the name as Lean compares it (``«command_elab»`` is ``command_elab``), else the text."""
        return ".".join(self.parts) if self.kind == "ident" else self.text


_SYMBOLS = (":=", "@[", "<;>", "=>", "..", "←", "→", "↦", "⟨", "⟩")


def tokenize(view: str) -> list[Token]:
    """Split a :func:`code_view` into tokens; identifiers keep their dotted parts with ``«»`` removed."""
    out: list[Token] = []
    i, n = 0, len(view)
    while i < n:
        c = view[i]
        if c.isspace():
            i = _SPACE_RUN.match(view, i).end()  # type: ignore[union-attr]
            continue
        if is_id_first(c) or c == "«":
            start = i
            parts: list[str] = []
            while i < n:
                if view[i] == "«":
                    j = view.find("»", i + 1)
                    if j < 0:
                        break  # unterminated: the lexer reported it (and blanked it in views it made)
                    parts.append(view[i + 1 : j])
                    i = min(j + 1, n)
                elif is_id_first(view[i]):
                    j = _id_rest_end(view, i + 1)
                    parts.append(view[i:j])
                    i = j
                else:
                    break
                if i + 1 < n and view[i] == "." and (is_id_first(view[i + 1]) or view[i + 1] == "«"):
                    i += 1
                else:
                    break
            if not parts:  # a lone, unterminated "«"
                out.append(Token(c, start, "symbol"))
                i = start + 1
                continue
            out.append(Token(view[start:i], start, "ident", tuple(parts)))
            continue
        if c == "#" and i + 1 < n and view[i + 1].isascii() and view[i + 1].isalpha():
            j = i + 1
            while j < n and view[j].isascii() and (view[j].isalnum() or view[j] == "_"):
                j += 1
            out.append(Token(view[i:j], i, "command"))
            i = j
            continue
        if c.isascii() and c.isdigit():
            j = i + 1
            if c == "0" and j < n and view[j] in "bBoOxX":
                j += 1
                while j < n and view[j] in _HEX:
                    j += 1
            else:
                while j < n and view[j].isascii() and view[j].isdigit():
                    j += 1
                if j + 1 < n and view[j] == "." and view[j + 1].isascii() and view[j + 1].isdigit():
                    j += 1
                    while j < n and view[j].isascii() and view[j].isdigit():
                        j += 1
            out.append(Token(view[i:j], i, "number"))
            i = j
            continue
        for sym in _SYMBOLS:
            if view.startswith(sym, i):
                out.append(Token(sym, i, "symbol"))
                i += len(sym)
                break
        else:
            out.append(Token(c, i, "symbol"))
            i += 1
    return out
