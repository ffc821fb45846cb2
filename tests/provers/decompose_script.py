"""The scripted model and the multi-step prelude theorems of the decomposition tests and benchmark.

The model writes plans and skeletons, proves the *lemmas* it is asked about, and answers every request for a whole
theorem with a wrong proof: what decomposition gains is then visible against whole-proof sampling.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from malot.llm import GenerationRequest, prompt_text
from malot.provers import Problem
from malot.testing.prelude_sorry import with_sorry_support

SUITE_FILE = Path(__file__).resolve().parents[1] / "data" / "prelude_suite" / "prelude_suite.jsonl"
HEADER = with_sorry_support(json.loads(SUITE_FILE.read_text(encoding="utf-8").splitlines()[0])["header"])

#: name -> (statement, skeletons in revision order)
THEOREMS: dict[str, tuple[str, list[str]]] = {
    "and_swap3": (
        "theorem and_swap3 (p q r : Prop) (h : And' p (And' q r)) : And' r p :=",
        ["  have hp : p := sorry\n  have hr : r := sorry\n  And'.intro hr hp"],
    ),
    "bool_step": (
        "theorem bool_step (p : Prop) (hp : p) : And' p True' :=",
        [
            "  have hb : Eq' MyBool.tt MyBool.ff := sorry\n  have ht : True' := sorry\n  And'.intro hp ht",
            "  have ht : True' := sorry\n  And'.intro hp ht",
        ],
    ),
    "chain": (
        "theorem chain (p q r s : Prop) (hpq : p → q) (hqr : q → r) (hrs : r → s) (hp : p) : s :=",
        ["  have hr : r := sorry\n  hrs hr"],
    ),
    "chain_step1": (
        "theorem chain_step1 (p q r s : Prop) (hpq : p → q) (hqr : q → r) (hrs : r → s) (hp : p) : r :=",
        ["  have hq : q := sorry\n  hqr hq"],
    ),
    "imp_chain4": (
        "theorem imp_chain4 (p q r s t : Prop) (h1 : p → q) (h2 : q → r) (h3 : r → s) (h4 : s → t) (hp : p) : t :=",
        ["  have hq : q := sorry\n  have hs : s := sorry\n  h4 hs"],
    ),
    "and_assoc3": (
        "theorem and_assoc3 (p q r : Prop) (h : And' (And' p q) r) : And' p (And' q r) :=",
        ["  have hp : p := sorry\n  have hq : q := sorry\n  have hr : r := sorry\n  And'.intro hp (And'.intro hq hr)"],
    ),
    "or_and": (
        "theorem or_and (p q r : Prop) (h : And' (Or' p q) r) : And' r (Or' q p) :=",
        ["  have hr : r := sorry\n  have hpq : Or' p q := sorry\n  have hqp : Or' q p := sorry\n  And'.intro hr hqp"],
    ),
}

#: lemma name -> a correct term proof (``None``: the model never finds one)
LEMMA_PROOFS: dict[str, str] = {
    "and_swap3_step1": "And'.rec (motive := fun _ => p) (fun hp _ => hp) h",
    "and_swap3_step2": (
        "And'.rec (motive := fun _ => r) (fun _ hqr => And'.rec (motive := fun _ => r) (fun _ hr => hr) hqr) h"
    ),
    "bool_step_step1_false": (
        "fun h => @Eq'.rec MyBool MyBool.tt (fun b _ => MyBool.rec (motive := fun _ => Prop) True' False' b)"
        " True'.intro MyBool.ff h"
    ),
    "chain_step1_step1": "hpq hp",
    "imp_chain4_step1": "h1 hp",
    "imp_chain4_step2": "h3 (h2 hq)",
    "and_assoc3_step1": (
        "And'.rec (motive := fun _ => p) (fun hpq _ => And'.rec (motive := fun _ => p) (fun hp _ => hp) hpq) h"
    ),
    "and_assoc3_step2": (
        "And'.rec (motive := fun _ => q) (fun hpq _ => And'.rec (motive := fun _ => q) (fun _ hq => hq) hpq) h"
    ),
    "and_assoc3_step3": "And'.rec (motive := fun _ => r) (fun _ hr => hr) h",
    "or_and_step1": "And'.rec (motive := fun _ => r) (fun _ hr => hr) h",
    "or_and_step2": "And'.rec (motive := fun _ => Or' p q) (fun hpq _ => hpq) h",
    "or_and_step3": "Or'.rec (motive := fun _ => Or' q p) (fun hp => Or'.inr hp) (fun hq => Or'.inl hq) hpq",
}

WRONG = "```lean4\nTrue'.intro\n```"
_TARGET = re.compile(r"theorem\s+([^\s(:]+)")


def problem(name: str) -> Problem:
    """The test problem ``name`` (prelude header with ``sorry`` support)."""
    return Problem(name=name, header=HEADER, statement=THEOREMS[name][0], informal=f"The theorem {name}.")


class DecomposeModel:
    """A scripted model (use with :class:`malot.llm.ScriptedLLM`): plans, skeletons (revised on request), lemma
    proofs from :data:`LEMMA_PROOFS`, wrong answers for whole theorems. Counts what it was asked."""

    def __init__(self, lemma_proofs: dict[str, str] | None = None) -> None:
        self.lemma_proofs = LEMMA_PROOFS if lemma_proofs is None else lemma_proofs
        self.asked: list[str] = []
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def __call__(self, request: GenerationRequest) -> str:
        text = prompt_text(request)
        answer = self._answer(text)
        self.prompt_tokens += len(text.split())  # how the scripted model counts tokens
        self.completion_tokens += len(answer.split())
        return answer

    def _answer(self, text: str) -> str:
        names = _TARGET.findall(text)
        name = names[-1] if names else ""
        if "informal proof plan" in text:
            self.asked.append(f"plan:{name}")
            return "1. Split the goal into steps. 2. Prove each step. 3. Combine them."
        if "proof skeleton" in text:
            revision = text.count("A previous proof skeleton was rejected")
            self.asked.append(f"skeleton:{name}:{revision}")
            statement, skeletons = THEOREMS[name]
            return "```lean4\n" + statement + "\n" + skeletons[min(revision, len(skeletons) - 1)] + "\n```"
        self.asked.append(f"prove:{name}")
        proof = self.lemma_proofs.get(name)
        return f"```lean4\n{proof}\n```" if proof is not None else WRONG


def settings_data(**decompose: Any) -> dict[str, Any]:
    """Settings for the decomposition tests: kimina-style chat prompts, term-mode automation and negation."""
    data: dict[str, Any] = {
        "prover": {"strategy": "decompose", "template": "kimina-prover", "samples": 1, "rounds": 2},
        "retrieval": {"retriever": "none", "k": 0},
        "decompose": {
            "automation": ["fun h => h", "True'.intro"],
            "negation": "({goal}) → False'",
            "lemma_samples": 1,
            "max_depth": 1,
            **decompose,
        },
    }
    return data
