"""The Lean-exact lexer: where comments, strings and interpolations end, names, errors -- checked against real Lean."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from malot.lean.lexer import FULL, INIT, PRELUDE, Token, code_view, detect_dialect, lex, normalize_name, tokenize


def words(source: str) -> set[str]:
    return {t.text for t in tokenize(code_view(source))}


# --- what is code and what is not ----------------------------------------------------------------------------

VIEW_CASES = [
    # (source, visible, hidden)
    ("a -- sorry\nb", ["a", "b"], ["sorry"]),
    ("a --\u2028sorry\nb", ["a", "b"], ["sorry"]),  # only "\n" ends a line comment
    ("a /- x /- sorry -/ still -/ b", ["a", "b"], ["sorry", "still"]),
    ("/-/- x -/ sorry", ["sorry"], ["x"]),  # the character after "/-" is skipped: one level only
    ("/-- doc /- nested -/ sorry -/ b", ["b"], ["sorry", "nested"]),
    ("/-! mod /- nested -/ sorry -/ b", ["b"], ["sorry", "nested"]),
    ("/--/ sorry -/ b", ["b"], ["sorry"]),
    ('"a \\" sorry" b', ["b"], ["sorry"]),
    ('"\\\\" sorry', ["sorry"], []),
    ('"gap \\\n   sorry" b', ["b"], ["sorry"]),  # a string gap does not end the string
    ('"\\x41 \\u0041 sorry" b', ["b"], ["sorry"]),
    ('r"a \\" sorry', ["sorry"], ["a"]),  # no escapes in raw strings: r"a \" closes at the second quote
    ('r#"a " sorry"# b', ["b"], ["sorry"]),
    ('r##"a "# sorry"## b', ["b"], ["sorry"]),
    ("h' sorry", ["h'", "sorry"], []),
    ("'\"' sorry", ["sorry"], []),
    ("'\\'' sorry", ["sorry"], []),
    ("'\\x41' sorry", ["sorry"], []),
    ("«a--b» sorry", ["sorry"], []),
    ("«a /- b» sorry", ["sorry"], []),
    ("x --- sorry", ["x"], ["sorry"]),
    # interpolation only where Lean interpolates
    ('s!"{sorry} text" b', ["sorry", "b"], ["text"]),
    ('s! "{sorry} text" b', ["sorry", "b"], ["text"]),  # s! is a token; whitespace before the string is fine
    ('s! /- c -/ "{sorry} text" b', ["sorry", "b"], ["text", "c"]),
    ('f!"{sorry}" m!"{admit}" b', ["sorry", "admit", "b"], []),
    ('dbg_trace "{sorry}"; b', ["sorry", "b"], []),
    ('throwError "{sorry} t"', ["sorry"], ["t"]),
    ('throwErrorAt ref "{sorry} t"', ["sorry", "ref"], ["t"]),
    ('throwErrorAt (f x) "{sorry} t"', ["sorry", "f"], ["t"]),
    ('trace[Meta.debug] "{sorry} t"', ["sorry"], ["t"]),
    ('println! "{sorry} t"', ["sorry"], ["t"]),
    ('panic!"{ /- " sorry', ["sorry"], []),  # panic! takes a term: a plain string
    ('assert! "{ /- " sorry', ["sorry"], []),
    ('xs!"{ /- " sorry', ["sorry"], []),  # an identifier ending in "!" is not the s! token
    ('`s! "{ /- " sorry', ["sorry"], []),  # a name literal is not a keyword
    ('s!"\\{ sorry }" b', ["b"], ["sorry"]),  # an escaped brace is text
    ('s!"{"}"} sorry"', [], ["sorry"]),  # a string inside the code part
    ('s!"{ /- } -/ x} sorry" b', ["x", "b"], ["sorry"]),  # a comment inside the code part
    ('s!"{ {a} } text {b}" c', ["a", "b", "c"], ["text"]),  # nested braces
    ('s!"{s!"{sorry}"} t {"}"}" z', ["sorry", "z"], ["t"]),
]


@pytest.mark.parametrize(("source", "visible", "hidden"), VIEW_CASES)
def test_code_view(source: str, visible: list[str], hidden: list[str]) -> None:
    view = code_view(source, FULL)
    assert len(view) == len(source)
    seen = {t.text for t in tokenize(view)}
    for word in visible:
        assert word in seen, (source, view)
    for word in hidden:
        assert word not in seen, (source, view)
    assert not lex(source, FULL).errors, source


def test_interpolation_depends_on_the_imports() -> None:
    src = 's!"{ /- " sorry'
    assert "sorry" in {t.text for t in tokenize(code_view(src, PRELUDE))}  # no s! token in a prelude file
    assert "sorry" not in {t.text for t in tokenize(code_view(src, INIT))}  # Init's s! opens code, /- a comment
    assert "sorry" in {t.text for t in tokenize(code_view('m!"{ /- " sorry', INIT))}  # m! needs Lean
    assert "sorry" not in {t.text for t in tokenize(code_view('m!"{ /- " sorry', FULL))}
    assert "sorry" not in {t.text for t in tokenize(code_view('dbg_trace "{ /- " sorry', PRELUDE))}  # builtin


def test_dialect_detection() -> None:
    assert detect_dialect("prelude\ndef x := 1") is PRELUDE
    assert detect_dialect("/- c -/\n-- c\nprelude") is PRELUDE
    assert detect_dialect("import Init.Data.List\nimport Init\n") is INIT
    assert detect_dialect("import Mathlib\n") is FULL
    assert detect_dialect("module\npublic import Init.Prelude\n") is INIT
    assert detect_dialect("theorem x : True := trivial") is FULL  # a bare snippet: the MiniF2F case


# --- names -----------------------------------------------------------------------------------------------------


def test_names_are_compared_as_lean_does() -> None:
    [tok] = tokenize(code_view("«command_elab»"))
    assert tok.name == "command_elab" and tok.text == "«command_elab»"
    [tok] = tokenize(code_view("Lean.«Kernel».Environment.«add Decl»"))
    assert tok.parts == ("Lean", "Kernel", "Environment", "add Decl")
    assert tok.name == "Lean.Kernel.Environment.add Decl"
    assert normalize_name("«a».b.«c.d»") == "a.b.c.d"
    assert Token("+", 0, "symbol").name == "+"


# --- lexical errors: Lean resumes reading code at the error ---------------------------------------------------

ERROR_CASES = [
    ('"\\q #exit"', "invalid escape sequence"),
    ('"\\u{41}"', "invalid hexadecimal numeral"),
    ('"\\x4g"', "invalid hexadecimal numeral"),
    ('" #exit', "unterminated string literal"),
    ('r#" #exit', "unterminated raw string literal"),
    ("«x #exit", "unterminated identifier escape"),
    ("'ab #exit'", "missing end of character literal"),
    ("/- #exit", "unterminated comment"),
    ("x\t#exit", "tabs are not allowed"),
    ('s!"{x} #exit', "unterminated string literal"),
    ("1e #exit", "missing exponent digits in scientific literal"),
    ("» #exit", "expected token"),
]


@pytest.mark.parametrize(("source", "message"), ERROR_CASES)
def test_lexical_errors_are_reported(source: str, message: str) -> None:
    lexed = lex(source, FULL)
    assert message in [e.message for e in lexed.errors], lexed.errors
    if "#exit" in source and "comment" not in message and not source.startswith("s!"):
        # like Lean, the lexer resumes reading code at the error, so the command after it is code
        assert "#exit" in {t.text for t in tokenize(lexed.view)}, lexed.view


def test_a_backslash_is_a_token_only_with_init() -> None:
    assert [e.message for e in lex("a \\ b", PRELUDE).errors] == ["expected token"]
    assert lex("a \\ b", INIT).errors == [] and lex("a \\ b", FULL).errors == []  # set difference


def test_spans_cover_comments_and_literals() -> None:
    src = '-- a\n/-- d -/ /- b -/ "s" r#"r"# \'c\' s!"t{x}u"'
    kinds = [(s.kind, src[s.start : s.end]) for s in lex(src, FULL).spans]
    assert kinds == [
        ("line_comment", "-- a"),
        ("doc_comment", "/-- d -/"),
        ("block_comment", "/- b -/"),
        ("string", '"s"'),
        ("raw_string", 'r#"r"#'),
        ("char", "'c'"),
        ("interpolated_string", 's!"t{x}u"'[2:]),
        ("interpolated_text", "t"),
        ("interpolated_text", "u"),
    ]


def test_deep_nesting_does_not_recurse() -> None:
    depth = sys.getrecursionlimit() * 2
    src = 's!"{' * depth + "sorry" + '}"' * depth + " tail"
    lexed = lex(src, FULL)
    assert not lexed.errors
    assert {"sorry", "tail"} <= {t.text for t in tokenize(lexed.view)}
    deep_comment = "/- " * depth + "-/" * depth + " tail"
    assert {t.text for t in tokenize(code_view(deep_comment))} == {"tail"}


# --- agreement with real Lean 4.35 ---------------------------------------------------------------------------

#: Snippets placed after an inductive T in a prelude file; the question is whether Lean elaborates "def f" (or runs
#: "#exit"), and the lexer must agree. Every case was first run through Lean 4.35 by hand.
LEAN_CASES = [
    "/-/- x -/ def f : T := T.a",
    "/- /- x -/ def f : T := T.a -/",
    "/- /- x -/ -/ def f : T := T.a",
    "/-- doc /- nested -/ still doc -/ def f : T := T.a",
    "/--/ def f : T := T.a -/",
    "/-! module doc -/ def f : T := T.a",
    "-- def f : T := T.a",
    "---/\ndef f : T := T.a",
    "def g := T.a --\u2028def f : T := T.a",
    'def s := "a\\" -/ /-"\ndef f : T := T.a',
    'def s := "/-"\ndef f : T := T.a',
    "def c := '\"'\ndef f : T := T.a",
    "def «a--b» : T := T.a\ndef f : T := T.a",
    "def «x\ny» := T.a def f : T := T.a",
    'def r := r#"a " /- "#\ndef f : T := T.a',
    'def s2 := r##"x"# def f : T := T.a "##',
    'def s2 := r##"x"# "## def f : T := T.a',
    'def g := r"\\" def f : T := T.a',
    'def s1 := "a\\\n   b" def f : T := T.a',
    'def g := "a\\\n  \\" def f : T := T.a"',
    "def c1 := '\\x41' def f : T := T.a",
    "def c1 := '\\u0041' def f : T := T.a",
    'def s4 := "\\u0041" def f : T := T.a',
    "def g := '\\'' def f : T := T.a",
    "def g := ''' def f : T := T.a",
    "def x' := T.a def f : T := T.a",
    # dbg_trace is a builtin term parser reading interpolatedStr: interpolation even in a prelude file
    'def g := dbg_trace "{ /- " def f : T := T.a',
    'def g := dbg_trace /- c -/ "{ /- " def f : T := T.a',
    'def g := dbg_trace "\\{ /- " def f : T := T.a',
    'def g := dbg_trace "{ "}" }" def f : T := T.a',
    "def g := dbg_trace \"{ '}' }\" def f : T := T.a",
    # no s! token in a prelude file: a plain string
    'def g := s!"{ /- " def f : T := T.a',
    'def g := panic!"{ /- " def f : T := T.a',
    # lexical errors: Lean resumes reading code at the error
    'def s4 := "\\u{41}" def f : T := T.a',
    'def g := "\\a" def f : T := T.a',
    'def g : T := "\\q #exit"\ndef f : T := T.a',
    'def g : T := "\\x4q#exit"\ndef f : T := T.a',
    'def g : T := " #exit\ndef f : T := T.a',
    'def g : T := r#" #exit\ndef f : T := T.a',
    "def g : T := «x #exit\ndef f : T := T.a",
    "def g : T := 'ab #exit'\ndef f : T := T.a",
    "def g : T := T.a\t#exit\ndef f : T := T.a",
    "def g : T := 1e #exit\ndef f : T := T.a",
    'def g := r#"#exitr#"\\ndbg_trace e\ndef f : T := T.a',  # Lean resumes after the "r": a plain string
    'def g :=  r"-/-/\\x4x\ndef f : T := T.a',
    # a parse error between tokens does not reopen a string or a comment
    'def g : T := ) "#exit"\ndef f : T := T.a',
    "def g : T := ) /- #exit -/\ndef f : T := T.a",
]


def _lexer_verdict(src: str) -> tuple[bool, bool]:
    """(does the lexer see the command #exit, does it see 'def f' and the final '#print axioms f') for a whole
    prelude file. ``#exitfoo`` counts as ``#exit``: Lean's token table reads the longest command token."""
    texts = [t.text for t in tokenize(code_view(src))]
    exits = any(t.startswith("#exit") for t in texts)
    sees_f = any(texts[i : i + 2] == ["def", "f"] for i in range(len(texts)))
    prints = texts[-3:] == ["#print", "axioms", "f"]
    return exits, sees_f and prints


@pytest.mark.lean
async def test_lexer_agrees_with_real_lean(lean_exe: Path) -> None:
    """For every case: Lean runs #exit iff the lexer sees #exit as a command; otherwise Lean elaborates 'def f'
    iff the lexer sees it as code."""
    from malot.lean.base import Snippet
    from malot.lean.file_backend import LeanFileVerifier

    sources = ["prelude\ninductive T where\n  | a : T\n" + case + "\n#print axioms f\n" for case in LEAN_CASES]
    async with LeanFileVerifier(lean_exe, workers=2) as lean:
        results = await lean.check([Snippet(id=str(k), code=src) for k, src in enumerate(sources)])
    disagreements = []
    for case, src, result in zip(LEAN_CASES, sources, results, strict=True):
        lean_exits = any("using 'exit' to interrupt Lean" in m.data for m in result.messages)
        lean_sees_f = any("'f' does not depend on any axioms" in m.data for m in result.messages)
        exits, sees_f = _lexer_verdict(src)
        if exits != lean_exits or (not exits and sees_f != lean_sees_f):
            disagreements.append((case, [m.short() for m in result.messages]))
    assert disagreements == []


_FRAGMENTS = [
    "/-", "-/", '"', "\\", "'", 'r#"', '"#', 'r"', "«", "»", "--", "\n", "{", "}", "dbg_trace ", "s!", " ", "x",
    "h'", "/--", "/-!", "\\n", "\\x4", "1", "e", "(", ")", "def g := ", "#exit", " def f : T := T.a ", "\\u00",
    "\\{", "T.a", ";", "`",
]  # fmt: skip


@pytest.mark.lean
@pytest.mark.slow
async def test_random_fragments_never_hide_code_from_the_lexer(lean_exe: Path) -> None:
    """Random mixes of comment, string and interpolation fragments (fixed seed): whenever Lean elaborates
    'def f' or runs #exit and the lexer does not see it, the lexer must at least report a lexical error (which
    the screen rejects). Lean's error recovery after a *parse* error can hide more than the lexer hides; that
    direction is conservative."""
    import random

    from malot.lean.base import Snippet
    from malot.lean.file_backend import LeanFileVerifier

    rng = random.Random(13)
    cases = ["def g := " + "".join(rng.choice(_FRAGMENTS) for _ in range(rng.randint(2, 9))) for _ in range(120)]
    # found by differential fuzzing: a character that starts no token makes Lean re-read the text after it
    # character by character; here it then runs an #exit that sits in a string for an error-free reading
    cases.append('def g := »\'"\'\\\\dbg_trace ""{"}"}"#exit"}-/')
    sources = ["prelude\ninductive T where\n  | a : T\n" + c + "\ndef f : T := T.a\n#print axioms f\n" for c in cases]
    async with LeanFileVerifier(lean_exe, workers=2) as lean:
        results = await lean.check([Snippet(id=str(k), code=src) for k, src in enumerate(sources)])
    hidden, outcomes = [], set()
    for src, result in zip(sources, results, strict=True):
        lean_exits = any("using 'exit' to interrupt Lean" in m.data for m in result.messages)
        lean_sees_f = any("'f' does not depend on any axioms" in m.data for m in result.messages)
        outcomes.add((lean_exits, lean_sees_f))
        exits, sees_f = _lexer_verdict(src)
        missed = (lean_exits and not exits) or (lean_sees_f and not lean_exits and not sees_f)
        if missed and not lex(src).errors:
            hidden.append((src, [m.short() for m in result.messages]))
    assert {(True, False), (False, True), (False, False)} <= outcomes  # every outcome occurs: not vacuous
    assert hidden == []
