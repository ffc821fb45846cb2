"""Regenerate ``prelude_suite.jsonl`` from the table below and check every entry with a real Lean 4.35.

Usage: ``python tests/data/prelude_suite/build_suite.py [LEAN]`` (default: the test fixture in tests/.cache).
Each correct proof must be accepted (no errors) and each wrong proof rejected (at least one error); the script
refuses to write the file otherwise.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

HEADER = """prelude
universe u v

-- The code generator needs these two constants (Lean's Init declares them) to compile inductive types whose
-- constructors carry proofs or type parameters; they are unsafe, so no theorem can depend on them.
unsafe axiom lcErased : Type
unsafe axiom lcAny : Type

inductive Eq' {α : Sort u} (a : α) : α → Prop where
  | refl : Eq' a a

inductive True' : Prop where
  | intro : True'

inductive False' : Prop

inductive And' (a b : Prop) : Prop where
  | intro : a → b → And' a b

inductive Or' (a b : Prop) : Prop where
  | inl : a → Or' a b
  | inr : b → Or' a b

inductive Iff' (a b : Prop) : Prop where
  | intro : (a → b) → (b → a) → Iff' a b

inductive Exists' {α : Sort u} (p : α → Prop) : Prop where
  | intro (w : α) (h : p w) : Exists' p

inductive MyNat where
  | zero : MyNat
  | succ : MyNat → MyNat

inductive MyBool where
  | tt : MyBool
  | ff : MyBool

inductive MyList (α : Type u) where
  | nil : MyList α
  | cons : α → MyList α → MyList α

noncomputable def MyNat.add (n m : MyNat) : MyNat :=
  MyNat.rec (motive := fun _ => MyNat) n (fun _ ih => MyNat.succ ih) m

noncomputable def MyNat.mul (n m : MyNat) : MyNat :=
  MyNat.rec (motive := fun _ => MyNat) MyNat.zero (fun _ ih => MyNat.add ih n) m

noncomputable def MyNat.pred (n : MyNat) : MyNat :=
  MyNat.rec (motive := fun _ => MyNat) MyNat.zero (fun k _ => k) n

noncomputable def MyNat.double (n : MyNat) : MyNat :=
  MyNat.rec (motive := fun _ => MyNat) MyNat.zero (fun _ ih => MyNat.succ (MyNat.succ ih)) n

noncomputable def MyBool.not (b : MyBool) : MyBool :=
  MyBool.rec (motive := fun _ => MyBool) MyBool.ff MyBool.tt b

noncomputable def MyBool.and (a b : MyBool) : MyBool :=
  MyBool.rec (motive := fun _ => MyBool) b MyBool.ff a

noncomputable def MyList.append {α : Type u} (xs ys : MyList α) : MyList α :=
  MyList.rec (motive := fun _ => MyList α) ys (fun x _ ih => MyList.cons x ih) xs

noncomputable def MyList.length {α : Type u} (xs : MyList α) : MyNat :=
  MyList.rec (motive := fun _ => MyNat) MyNat.zero (fun _ _ ih => MyNat.succ ih) xs

noncomputable def MyList.map {α : Type u} {β : Type v} (f : α → β) (xs : MyList α) : MyList β :=
  MyList.rec (motive := fun _ => MyList β) MyList.nil (fun x _ ih => MyList.cons (f x) ih) xs

"""

# name, informal statement, Lean statement (ending in ':='), correct proof body, wrong proof body
ENTRIES: list[tuple[str, str, str, str, str]] = [
    (
        "zero_eq_zero",
        "Zero equals zero.",
        "theorem zero_eq_zero : Eq' MyNat.zero MyNat.zero :=",
        "Eq'.refl",
        "Eq'.refl (a := MyNat.succ MyNat.zero)",
    ),
    (
        "imp_self",
        "Every proposition implies itself.",
        "theorem imp_self (p : Prop) : p → p :=",
        "fun h => h",
        "fun h => h h",
    ),
    (
        "imp_trans",
        "Implication is transitive.",
        "theorem imp_trans (p q r : Prop) (hpq : p → q) (hqr : q → r) : p → r :=",
        "fun hp => hqr (hpq hp)",
        "fun hp => hpq (hqr hp)",
    ),
    (
        "modus_ponens",
        "If p holds and p implies q, then q holds.",
        "theorem modus_ponens (p q : Prop) (hp : p) (hpq : p → q) : q :=",
        "hpq hp",
        "hp",
    ),
    (
        "true_holds",
        "True holds.",
        "theorem true_holds : True' :=",
        "True'.intro",
        "True'.intro True'.intro",
    ),
    (
        "false_elim",
        "From falsity anything follows.",
        "theorem false_elim (p : Prop) (h : False') : p :=",
        "False'.rec (motive := fun _ => p) h",
        "h",
    ),
    (
        "and_intro",
        "If p and q hold then p and q holds.",
        "theorem and_intro (p q : Prop) (hp : p) (hq : q) : And' p q :=",
        "And'.intro hp hq",
        "And'.intro hq hp",
    ),
    (
        "and_left",
        "From p and q, p follows.",
        "theorem and_left (p q : Prop) (h : And' p q) : p :=",
        "And'.rec (motive := fun _ => p) (fun hp _ => hp) h",
        "And'.rec (motive := fun _ => p) (fun _ hq => hq) h",
    ),
    (
        "and_right",
        "From p and q, q follows.",
        "theorem and_right (p q : Prop) (h : And' p q) : q :=",
        "And'.rec (motive := fun _ => q) (fun _ hq => hq) h",
        "And'.rec (motive := fun _ => q) (fun hp _ => hp) h",
    ),
    (
        "and_swap",
        "Conjunction is commutative.",
        "theorem and_swap (p q : Prop) (h : And' p q) : And' q p :=",
        "And'.rec (motive := fun _ => And' q p) (fun hp hq => And'.intro hq hp) h",
        "And'.rec (motive := fun _ => And' q p) (fun hp hq => And'.intro hp hq) h",
    ),
    (
        "or_inl_intro",
        "If p holds then p or q holds.",
        "theorem or_inl_intro (p q : Prop) (hp : p) : Or' p q :=",
        "Or'.inl hp",
        "Or'.inr hp",
    ),
    (
        "or_swap",
        "Disjunction is commutative.",
        "theorem or_swap (p q : Prop) (h : Or' p q) : Or' q p :=",
        "Or'.rec (motive := fun _ => Or' q p) (fun hp => Or'.inr hp) (fun hq => Or'.inl hq) h",
        "Or'.rec (motive := fun _ => Or' q p) (fun hp => Or'.inl hp) (fun hq => Or'.inr hq) h",
    ),
    (
        "or_elim",
        "If p or q holds, and both p and q imply r, then r holds.",
        "theorem or_elim (p q r : Prop) (h : Or' p q) (hp : p → r) (hq : q → r) : r :=",
        "Or'.rec (motive := fun _ => r) hp hq h",
        "Or'.rec (motive := fun _ => r) hq hp h",
    ),
    (
        "iff_refl",
        "Every proposition is equivalent to itself.",
        "theorem iff_refl (p : Prop) : Iff' p p :=",
        "Iff'.intro (fun h => h) (fun h => h)",
        "Iff'.intro (fun h => h)",
    ),
    (
        "iff_symm",
        "Equivalence is symmetric.",
        "theorem iff_symm (p q : Prop) (h : Iff' p q) : Iff' q p :=",
        "Iff'.rec (motive := fun _ => Iff' q p) (fun hpq hqp => Iff'.intro hqp hpq) h",
        "Iff'.rec (motive := fun _ => Iff' q p) (fun hpq hqp => Iff'.intro hpq hqp) h",
    ),
    (
        "double_neg_intro",
        "If p holds then not not p holds.",
        "theorem double_neg_intro (p : Prop) (hp : p) : (p → False') → False' :=",
        "fun hn => hn hp",
        "fun hn => hp hn",
    ),
    (
        "contrapositive",
        "If p implies q then not q implies not p.",
        "theorem contrapositive (p q : Prop) (hpq : p → q) : (q → False') → p → False' :=",
        "fun hnq hp => hnq (hpq hp)",
        "fun hnq hp => hpq (hnq hp)",
    ),
    (
        "curry_and",
        "A function from p and q to r gives a function from p to q to r.",
        "theorem curry_and (p q r : Prop) (f : And' p q → r) : p → q → r :=",
        "fun hp hq => f (And'.intro hp hq)",
        "fun hp hq => f hp hq",
    ),
    (
        "uncurry_and",
        "A function from p to q to r gives a function from p and q to r.",
        "theorem uncurry_and (p q r : Prop) (f : p → q → r) : And' p q → r :=",
        "fun h => And'.rec (motive := fun _ => r) f h",
        "fun h => f h",
    ),
    (
        "exists_zero",
        "There is a natural number equal to zero.",
        "theorem exists_zero : Exists' (fun n : MyNat => Eq' n MyNat.zero) :=",
        "Exists'.intro MyNat.zero Eq'.refl",
        "Exists'.intro (MyNat.succ MyNat.zero) Eq'.refl",
    ),
    (
        "exists_succ",
        "Every natural number n has a number equal to its successor.",
        "theorem exists_succ (n : MyNat) : Exists' (fun m : MyNat => Eq' m (MyNat.succ n)) :=",
        "Exists'.intro (MyNat.succ n) Eq'.refl",
        "Exists'.intro n Eq'.refl",
    ),
    (
        "eq_symm",
        "Equality is symmetric.",
        "theorem eq_symm {α : Sort u} (a b : α) (h : Eq' a b) : Eq' b a :=",
        "Eq'.rec (motive := fun x _ => Eq' x a) Eq'.refl h",
        "h",
    ),
    (
        "eq_trans",
        "Equality is transitive.",
        "theorem eq_trans {α : Sort u} (a b c : α) (hab : Eq' a b) (hbc : Eq' b c) : Eq' a c :=",
        "Eq'.rec (motive := fun x _ => Eq' a x) hab hbc",
        "Eq'.rec (motive := fun x _ => Eq' a x) hbc hab",
    ),
    (
        "congr_succ",
        "Equal numbers have equal successors.",
        "theorem congr_succ (a b : MyNat) (h : Eq' a b) : Eq' (MyNat.succ a) (MyNat.succ b) :=",
        "Eq'.rec (motive := fun x _ => Eq' (MyNat.succ a) (MyNat.succ x)) Eq'.refl h",
        "Eq'.refl",
    ),
    (
        "add_zero",
        "Adding zero on the right changes nothing.",
        "theorem add_zero (n : MyNat) : Eq' (MyNat.add n MyNat.zero) n :=",
        "Eq'.refl",
        "Eq'.refl (a := MyNat.zero)",
    ),
    (
        "add_succ",
        "n plus the successor of m is the successor of n plus m.",
        "theorem add_succ (n m : MyNat) : Eq' (MyNat.add n (MyNat.succ m)) (MyNat.succ (MyNat.add n m)) :=",
        "Eq'.refl",
        "Eq'.refl (a := MyNat.add n m)",
    ),
    (
        "one_add_one",
        "One plus one is two.",
        "theorem one_add_one : Eq' (MyNat.add (MyNat.succ MyNat.zero) (MyNat.succ MyNat.zero))\n"
        "    (MyNat.succ (MyNat.succ MyNat.zero)) :=",
        "Eq'.refl",
        "Eq'.refl (a := MyNat.succ MyNat.zero)",
    ),
    (
        "zero_add",
        "Adding zero on the left changes nothing (by induction).",
        "theorem zero_add (n : MyNat) : Eq' (MyNat.add MyNat.zero n) n :=",
        "MyNat.rec (motive := fun k => Eq' (MyNat.add MyNat.zero k) k) Eq'.refl\n"
        "    (fun k ih => Eq'.rec (motive := fun x _ => Eq' (MyNat.succ (MyNat.add MyNat.zero k)) (MyNat.succ x))"
        " Eq'.refl ih) n",
        "Eq'.refl",
    ),
    (
        "mul_zero",
        "Any number times zero is zero.",
        "theorem mul_zero (n : MyNat) : Eq' (MyNat.mul n MyNat.zero) MyNat.zero :=",
        "Eq'.refl",
        "Eq'.refl (a := n)",
    ),
    (
        "two_mul_one",
        "Two times one is two.",
        "theorem two_mul_one : Eq' (MyNat.mul (MyNat.succ (MyNat.succ MyNat.zero)) (MyNat.succ MyNat.zero))\n"
        "    (MyNat.succ (MyNat.succ MyNat.zero)) :=",
        "Eq'.refl",
        "Eq'.refl (a := MyNat.zero)",
    ),
    (
        "pred_succ",
        "The predecessor of the successor of n is n.",
        "theorem pred_succ (n : MyNat) : Eq' (MyNat.pred (MyNat.succ n)) n :=",
        "Eq'.refl",
        "Eq'.refl (a := MyNat.succ n)",
    ),
    (
        "double_two",
        "Double of two is four.",
        "theorem double_two : Eq' (MyNat.double (MyNat.succ (MyNat.succ MyNat.zero)))\n"
        "    (MyNat.succ (MyNat.succ (MyNat.succ (MyNat.succ MyNat.zero)))) :=",
        "Eq'.refl",
        "Eq'.refl (a := MyNat.succ (MyNat.succ MyNat.zero))",
    ),
    (
        "not_tt",
        "The negation of true is false.",
        "theorem not_tt : Eq' (MyBool.not MyBool.tt) MyBool.ff :=",
        "Eq'.refl",
        "Eq'.refl (a := MyBool.tt)",
    ),
    (
        "not_not_ff",
        "Negating false twice gives false.",
        "theorem not_not_ff : Eq' (MyBool.not (MyBool.not MyBool.ff)) MyBool.ff :=",
        "Eq'.refl",
        "Eq'.refl (a := MyBool.tt)",
    ),
    (
        "and_ff_left",
        "False and anything is false.",
        "theorem and_ff_left (b : MyBool) : Eq' (MyBool.and MyBool.ff b) MyBool.ff :=",
        "Eq'.refl",
        "Eq'.refl (a := b)",
    ),
    (
        "nil_append",
        "Appending a list to the empty list gives the list.",
        "theorem nil_append {α : Type u} (xs : MyList α) : Eq' (MyList.append MyList.nil xs) xs :=",
        "Eq'.refl",
        "Eq'.refl (a := (MyList.nil : MyList α))",
    ),
    (
        "length_singleton",
        "A one-element list has length one.",
        "theorem length_singleton {α : Type u} (x : α) :\n"
        "    Eq' (MyList.length (MyList.cons x MyList.nil)) (MyNat.succ MyNat.zero) :=",
        "Eq'.refl",
        "Eq'.refl (a := MyNat.zero)",
    ),
    (
        "map_nil",
        "Mapping a function over the empty list gives the empty list.",
        "theorem map_nil {α : Type u} {β : Type v} (f : α → β) :\n"
        "    Eq' (MyList.map f (MyList.nil : MyList α)) MyList.nil :=",
        "Eq'.refl",
        "Eq'.refl (a := MyList.cons (f _) MyList.nil)",
    ),
    (
        "forall_and_left",
        "If every x satisfies p x and q x, then every x satisfies p x.",
        "theorem forall_and_left {α : Type u} (p q : α → Prop) (h : ∀ x, And' (p x) (q x)) : ∀ x, p x :=",
        "fun x => And'.rec (motive := fun _ => p x) (fun hp _ => hp) (h x)",
        "fun x => h x",
    ),
    (
        "exists_of_forall",
        "If p holds for every natural number, then some natural number satisfies p.",
        "theorem exists_of_forall (p : MyNat → Prop) (h : ∀ n, p n) : Exists' p :=",
        "Exists'.intro MyNat.zero (h MyNat.zero)",
        "Exists'.intro MyNat.zero h",
    ),
]


def records() -> list[dict[str, str]]:
    """The suite as JSON-ready records."""
    return [
        {"name": n, "informal": i, "header": HEADER, "statement": s, "proof": p, "wrong_proof": w}
        for n, i, s, p, w in ENTRIES
    ]


def lean_file(record: dict[str, str], proof: str) -> str:
    """The Lean file of ``record`` with ``proof``: header, statement, newline, two-space-indented proof."""
    return f"{record['header']}{record['statement']}\n  {proof}\n"


def errors(lean: str, code: str) -> list[str]:
    """Error messages Lean reports for ``code``."""
    with tempfile.NamedTemporaryFile("w", suffix=".lean", delete=False, encoding="utf-8") as fh:
        fh.write(code)
    out = subprocess.run([lean, "--json", fh.name], capture_output=True, text=True, timeout=60)
    Path(fh.name).unlink()
    msgs = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    return [m["data"] for m in msgs if m["severity"] == "error"]


def main() -> int:
    """Check every entry and write the JSONL file."""
    lean = sys.argv[1] if len(sys.argv) > 1 else str(HERE.parents[1] / ".cache" / "lean-4.35" / "lean")
    recs = records()
    bad = []
    for rec in recs:
        good_errs = errors(lean, lean_file(rec, rec["proof"]))
        wrong_errs = errors(lean, lean_file(rec, rec["wrong_proof"]))
        if good_errs or not wrong_errs:
            bad.append((rec["name"], good_errs, wrong_errs))
    for name, good_errs, wrong_errs in bad:
        print(f"{name}: correct proof errors={good_errs!r}; wrong proof errors={wrong_errs!r}")
    if bad:
        return 1
    with (HERE / "prelude_suite.jsonl").open("w", encoding="utf-8") as fh:
        for rec in recs:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    print(f"wrote {len(recs)} checked theorems to {HERE / 'prelude_suite.jsonl'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
