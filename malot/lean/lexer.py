"""A small Lean 4 lexer for the source screen: blank out comments and string literals exactly as Lean lexes them.

The screen must not be fooled in either direction: ``sorry`` inside a comment or a string is harmless, while code
hidden after a cleverly nested comment is not. So this module follows Lean's own rules
(``Lean.Parser.Basic``): ``--`` line comments; ``/- ... -/`` block comments that *nest* (each ``/-`` inside opens a
level, each ``-/`` closes one), where the character right after an opening ``/-`` is skipped unread; doc comments
``/--`` and ``/-!``; string literals with backslash escapes; raw strings ``r#"..."#``; character literals (a ``'``
that starts a token, not one inside an identifier like ``h'``); interpolated strings (``s!"...{code}..."``, whose
``{...}`` parts are code); and ``«escaped identifiers»``, inside which nothing is a comment.

:func:`code_view` keeps every character position (blanked characters become spaces, newlines stay), so positions
in the view are positions in the source. :func:`tokenize` splits the view into identifiers, ``#commands``, and
symbols.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Token", "code_view", "is_id_first", "is_id_rest", "tokenize"]


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


def is_id_first(c: str) -> bool:
    """Can ``c`` start a Lean identifier (ASCII letter, ``_``, or Lean's letter-like Unicode ranges)?"""
    return len(c) == 1 and ((c.isascii() and c.isalpha()) or c == "_" or _is_letter_like(c))


def is_id_rest(c: str) -> bool:
    """Can ``c`` continue a Lean identifier?"""
    return len(c) == 1 and (is_id_first(c) or (c.isascii() and c.isdigit()) or c in "'!?" or _is_subscript(c))


class _Lexer:
    def __init__(self, src: str) -> None:
        self.src = src
        self.out = list(src)
        self.n = len(src)

    def blank(self, start: int, end: int) -> None:
        for k in range(start, min(end, self.n)):
            if self.out[k] != "\n":
                self.out[k] = " "

    def block_comment_end(self, i: int) -> int:
        """``i`` is just after the opening of a block comment (nesting 1); return the index after its ``-/``."""
        src, n, nesting = self.src, self.n, 1
        while i < n:
            c = src[i]
            if c == "-" and i + 1 < n and src[i + 1] == "/":
                nesting -= 1
                i += 2
                if nesting == 0:
                    return i
            elif c == "/" and i + 1 < n and src[i + 1] == "-":
                nesting += 1
                i += 2
            else:
                i += 1
        return n  # unterminated: Lean reports an error; everything after is comment

    def string_end(self, i: int, interpolated: bool) -> int:
        """``i`` is just after the opening ``"``; return the index after the closing one (code in ``{}`` kept)."""
        src, n = self.src, self.n
        start = i
        while i < n:
            c = src[i]
            if c == "\\":
                i += 2
            elif c == '"':
                self.blank(start, i)
                return i + 1
            elif interpolated and c == "{":
                self.blank(start, i)
                i = self.code(i + 1, stop_at_brace=True)
                start = i
            else:
                i += 1
        self.blank(start, n)
        return n

    def raw_string_end(self, i: int, hashes: int) -> int | None:
        """``i`` is just after ``r##"``; return the index after ``"##``."""
        close = '"' + "#" * hashes
        j = self.src.find(close, i)
        return None if j < 0 else j + len(close)

    def char_literal_end(self, i: int) -> int | None:
        """``i`` is at a ``'`` that starts a token; return the index after the closing ``'`` or None."""
        src, n = self.src, self.n
        j = i + 1
        if j >= n:
            return None
        if src[j] == "\\":
            if j + 1 >= n:
                return None
            esc = src[j + 1]
            j += {"x": 4, "u": 6}.get(esc, 2)
        else:
            j += 1
        return j + 1 if j < n and src[j] == "'" else None

    def code(self, i: int, stop_at_brace: bool = False) -> int:
        src, n = self.src, self.n
        depth = 0
        while i < n:
            c = src[i]
            nxt = src[i + 1] if i + 1 < n else ""
            prev = src[i - 1] if i > 0 else ""
            if c == "-" and nxt == "-":
                j = src.find("\n", i)
                j = n if j < 0 else j
                self.blank(i, j)
                i = j
            elif c == "/" and nxt == "-":
                # "/--" and "/-!" (doc comments) and plain "/-" alike: the body starts two characters after
                # the slash, and Lean skips the character right after a plain "/-" without looking at it.
                j = self.block_comment_end(min(i + 3, n))
                self.blank(i, j)
                i = j
            elif c == "«":
                j = src.find("»", i + 1)
                i = n if j < 0 else j + 1
            elif c == '"':
                i = self.string_end(i + 1, interpolated=prev == "!")
            elif c == "r" and not is_id_rest(prev) and nxt in ('"', "#"):
                k = i + 1
                while k < n and src[k] == "#":
                    k += 1
                end = self.raw_string_end(k + 1, k - i - 1) if k < n and src[k] == '"' else None
                if end is None:
                    i += 1
                else:
                    self.blank(i, end)
                    i = end
            elif c == "'" and not is_id_rest(prev) and nxt != "'":
                end = self.char_literal_end(i)
                if end is None:
                    i += 1
                else:
                    self.blank(i, end)
                    i = end
            elif stop_at_brace and c == "{":
                depth += 1
                i += 1
            elif stop_at_brace and c == "}":
                if depth == 0:
                    return i + 1
                depth -= 1
                i += 1
            else:
                i += 1
        return n


def code_view(src: str) -> str:
    """``src`` with comments, doc comments and string/char literals replaced by spaces (newlines and length kept)."""
    lexer = _Lexer(src)
    lexer.code(0)
    return "".join(lexer.out)


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


_SYMBOLS = (":=", "@[", "<;>", "=>", "..", "←", "→", "↦", "⟨", "⟩")


def tokenize(view: str) -> list[Token]:
    """Split a :func:`code_view` into tokens; identifiers keep their dotted parts with ``«»`` removed."""
    out: list[Token] = []
    i, n = 0, len(view)
    while i < n:
        c = view[i]
        if c.isspace():
            i += 1
            continue
        if is_id_first(c) or c == "«":
            start = i
            parts: list[str] = []
            while i < n:
                if view[i] == "«":
                    j = view.find("»", i + 1)
                    j = n - 1 if j < 0 else j
                    parts.append(view[i + 1 : j])
                    i = j + 1
                elif is_id_first(view[i]):
                    j = i + 1
                    while j < n and is_id_rest(view[j]):
                        j += 1
                    parts.append(view[i:j])
                    i = j
                else:
                    break
                if i + 1 < n and view[i] == "." and (is_id_first(view[i + 1]) or view[i + 1] == "«"):
                    i += 1
                else:
                    break
            out.append(Token(view[start:i], start, "ident", tuple(parts)))
            continue
        if c == "#" and i + 1 < n and is_id_first(view[i + 1]):
            j = i + 1
            while j < n and (is_id_rest(view[j]) or view[j] == "_"):
                j += 1
            out.append(Token(view[i:j], i, "command"))
            i = j
            continue
        if c.isascii() and c.isdigit():
            j = i + 1
            while j < n and (view[j].isalnum() or view[j] in "._"):
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
