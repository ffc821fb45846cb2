"""Splitting a snippet into its header (imports, options, opens) and body, so REPLs can reuse the header's env.

Elaborating ``import Mathlib`` takes seconds and gigabytes; a REPL that did it once answers later bodies with
``{"cmd": body, "env": id}``. The split is at a line boundary, so body positions shift by a whole number of lines.
"""

from __future__ import annotations

from malot.lean.lexer import code_view

__all__ = ["split_header"]

_HEADER_STARTS = ("import ", "prelude", "set_option ", "open ")


def _is_header_line(view_line: str) -> bool:
    stripped = view_line.strip()
    if not stripped:
        return True
    if not view_line.startswith(_HEADER_STARTS):
        return False
    # "open X in" / "set_option o v in" scope only the next command: they belong to the body
    return not (stripped.startswith(("set_option ", "open ")) and " in " in f"{stripped} ")


def split_header(code: str) -> tuple[str, str, int]:
    """``(header, body, line_offset)``: leading header lines, the rest, and how many lines the header spans.

    Blank lines between header and body belong to the header (comment-only lines to the body); continuation lines of an
    ``open``/``import`` (indented) too. Whitespace-only differences do not change the header text returned.
    """
    first = code.lstrip()
    if not first.startswith((*_HEADER_STARTS, "--", "/-")):
        return "", code, 0  # fast path: the snippet starts with its body
    lines = code.split("\n")
    view = code_view(code).split("\n")
    k = 0
    last_header = -1
    while k < len(lines):
        v = view[k]
        if _is_header_line(v) or (last_header >= 0 and v[:1] in (" ", "\t") and v.strip()):
            if v.strip():
                last_header = k
            k += 1
            continue
        break
    cut = last_header + 1
    while cut < len(lines) and not lines[cut].strip():  # blank lines after the header go with it
        cut += 1
    header_lines = [ln.rstrip() for ln in lines[:cut] if ln.strip()]
    header = "\n".join(header_lines)
    body = "\n".join(lines[cut:])
    return header, body, cut
