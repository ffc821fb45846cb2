"""Commands and declarations of a whole Lean file (for whole-file mode), read from Lean-exact tokens."""

from __future__ import annotations

from pathlib import Path

import pytest

from malot.lean.declarations import Command, find_declarations, split_commands

FILE = """import Mathlib
universe u v
variable (x : Nat)
  (y : Nat)

open Real in
/-- a doc comment that mentions theorem fake : False -/
@[simp, «deprecated» "use theorem other : False"] private noncomputable theorem «h».{w, z} (a : Nat) :
    a = a := by
  open Nat in
  rfl

lemma h2 : True :=
trivial
-- theorem commented : False := sorry
/- theorem hidden : False := sorry -/
def s : String := "theorem inString : False"
instance (priority := 10) foo : Inhabited Nat := ⟨0⟩
instance : Inhabited Nat where
  default := 0
class inductive C | a
protected theorem Foo.bar : True := trivial
#print axioms h2
def f : Nat → Nat
  | 0 => 1
  | _ => 2
example : True := trivial
noncomputable section
end
"""


def _commands() -> list[Command]:
    return split_commands(FILE)


def test_commands_are_split_at_their_keywords() -> None:
    kinds = [c.kind for c in _commands()]
    assert kinds == [
        "import",
        "universe",
        "variable",
        "open",
        "theorem",
        "lemma",
        "def",
        "instance",
        "instance",
        "class inductive",
        "theorem",
        "#print",
        "def",
        "example",
        "section",
        "end",
    ]
    cmds = _commands()
    assert "".join(c.text(FILE) for c in cmds) == FILE  # the spans tile the file
    assert cmds[2].text(FILE) == "variable (x : Nat)\n  (y : Nat)\n\n"
    assert cmds[3].in_prefix and cmds[3].text(FILE) == "open Real in\n"


def test_declaration_parts() -> None:
    h = _commands()[4]
    decl = h.declaration
    assert decl is not None
    assert h.doc_comment is not None and FILE[h.doc_comment[0] : h.doc_comment[1]].startswith("/-- a doc")
    assert h.start == h.doc_comment[0]
    assert decl.kind == "theorem" and decl.name == "h" and decl.raw_name == "«h»"
    assert decl.universe_params == ("w", "z")
    assert decl.modifiers == ("private", "noncomputable")
    assert decl.attributes == ("simp", "deprecated")
    assert FILE[decl.keyword_start : decl.name_end] == "theorem «h».{w, z}"
    assert decl.signature_end is not None and decl.body_start is not None
    assert FILE[decl.name_end : decl.signature_end].strip() == "(a : Nat) :\n    a = a"
    assert FILE[decl.body_start :].startswith(" by\n  open Nat in\n  rfl")


def test_names_only_from_code() -> None:
    names = [d.name for d in find_declarations(FILE)]
    assert names == ["h", "h2", "s", "foo", None, "C", "Foo.bar", "f", None]
    decls = {d.name: d for d in find_declarations(FILE)}
    assert decls["Foo.bar"].modifiers == ("protected",)
    assert decls["f"].signature_end is not None
    assert FILE[decls["f"].signature_end :].startswith("| 0 => 1")


@pytest.mark.parametrize(
    ("source", "name", "universes"),
    [
        ("theorem h.{v} : True := trivial", "h", ("v",)),
        ("theorem h.{u,v} : True := trivial", "h", ("u", "v")),
        ("theorem «h.{v}» : True := trivial", "h.{v}", ()),
        ("private theorem p : True := trivial", "p", ()),
        ('@[deprecated "theorem x"] theorem real : True := trivial', "real", ()),
        ("theorem A.«b c».d : True := trivial", "A.b c.d", ()),
    ],
)
def test_issue_whole_file_names(source: str, name: str, universes: tuple[str, ...]) -> None:
    [decl] = find_declarations(source)
    assert (decl.name, decl.universe_params) == (name, universes)


def test_statement_text() -> None:
    decls = {d.name: d for d in find_declarations(FILE)}
    assert decls["h"].statement(FILE) == "theorem «h».{w, z} (a : Nat) :\n    a = a :="
    assert decls["h2"].statement(FILE) == "theorem h2 : True :="
    assert decls["f"].statement(FILE) is None  # equations, no ":="
    src = '@[deprecated "theorem x : False"] lemma real.{u} (α : Sort u) : True := trivial'
    [decl] = find_declarations(src)
    assert decl.statement(src) == "theorem real.{u} (α : Sort u) : True :="


def test_text_before_the_first_command() -> None:
    cmds = split_commands("x y\ntheorem t : True := trivial")
    assert [c.kind for c in cmds] == ["", "theorem"]
    assert split_commands("") == []


PRELUDE_FILE = """prelude
universe u
inductive T : Type u where
  | a : T
inductive Triv : Prop where
  | intro : Triv
/-- doc with theorem fake -/
@[reducible] private def «d» : T.{u} := T.a
theorem t1.{v} (α : Sort v) (x : α) : Triv := Triv.intro
protected theorem T.p : Triv := Triv.intro
/- theorem commented : Triv := Triv.intro -/
theorem t2 : Triv := /- -/ Triv.intro
noncomputable def nc : T.{0} := T.a
"""


@pytest.mark.lean
async def test_declarations_agree_with_real_lean(lean_exe: Path) -> None:
    """Every declaration found exists for Lean under that name; the commented one does not."""
    from malot.lean.base import Snippet
    from malot.lean.file_backend import LeanFileVerifier

    decls = find_declarations(PRELUDE_FILE)
    names = [d.name for d in decls]
    assert names == ["T", "Triv", "d", "t1", "T.p", "t2", "nc"]
    assert [d.universe_params for d in decls if d.name == "t1"] == [("v",)]
    probes = "".join(f"#print axioms {name}\n" for name in [*names, "commented", "fake"])
    async with LeanFileVerifier(lean_exe, workers=1) as lean:
        [result] = await lean.check([Snippet(id="decls", code=PRELUDE_FILE + probes)])
    found = [m.data for m in result.messages if "does not depend on any axioms" in m.data]
    assert len(found) == len(names), [m.short() for m in result.messages]
    unknown = [m.data for m in result.messages if m.severity == "error"]
    assert len(unknown) == 2 and all("commented" in u or "fake" in u for u in unknown), unknown
