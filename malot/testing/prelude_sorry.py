"""Test fixture: the declarations a ``prelude`` file needs before Lean 4.35 can elaborate ``sorry``.

Lean elaborates ``sorry`` to ``sorryAx (Lean.Name → α) false tag`` where ``tag`` is a ``Lean.Name`` built from
string and number literals (``OfNat.ofNat Nat n (instOfNatNat n)``), so a prelude file that uses ``sorry`` must
declare ``Bool``, ``Nat``, ``OfNat``/``OfNat.ofNat``/``instOfNatNat``, ``String``, ``Lean.Name`` and the axiom
``sorryAx`` itself. ``Nat``, ``OfNat``, ``String`` and ``Lean.Name`` are declared with ``genCtorIdx false``: Lean
builds no ``casesOn`` for these names in a prelude file, and the ``ctorIdx`` construction that needs it would fail.
``PUnit``/``Unit`` (as in ``Init``) keep error recovery quiet: without them every elaboration error is followed by
"Unknown constant `Unit`" errors at the enclosing ``have`` steps. A theorem whose proof uses ``sorry`` then
reports ``declaration uses `sorry``` and ``#print axioms`` lists ``sorryAx``, exactly as with Lean's own ``Init``.
Found by trial with the real fixture (:mod:`malot.testing.prelude_lean`); the header needs ``universe u`` declared
before it.
"""

from __future__ import annotations

__all__ = ["SORRY_SUPPORT", "with_sorry_support"]

SORRY_SUPPORT = """
-- `sorry` support (see malot.testing.prelude_sorry)
inductive Bool where
  | false : Bool
  | true : Bool

set_option genCtorIdx false in
inductive Nat where
  | zero : Nat
  | succ (n : Nat) : Nat

set_option genCtorIdx false in
inductive OfNat (α : Type u) (n : Nat) : Type u where
  | mk : α → OfNat α n

noncomputable def OfNat.ofNat {α : Type u} (n : Nat) (self : OfNat α n) : α :=
  OfNat.rec (motive := fun _ => α) (fun a => a) self

noncomputable def instOfNatNat (n : Nat) : OfNat Nat n := OfNat.mk n

set_option genCtorIdx false in
inductive String where
  | mk : String

set_option genCtorIdx false in
inductive Lean.Name where
  | anonymous : Lean.Name
  | str (pre : Lean.Name) (s : String) : Lean.Name
  | num (pre : Lean.Name) (i : Nat) : Lean.Name

axiom sorryAx (α : Sort u) (synthetic : Bool) : α

inductive PUnit : Sort (max 1 u) where
  | unit : PUnit

abbrev Unit : Type := PUnit.{1}

"""


def with_sorry_support(header: str) -> str:
    """``header`` (a prelude header declaring ``universe u``) followed by :data:`SORRY_SUPPORT`."""
    return header.rstrip("\n") + "\n" + SORRY_SUPPORT
