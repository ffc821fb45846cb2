"""Decomposition against whole-proof sampling on multi-step prelude theorems, with a scripted model.

Setup: six multi-step theorems checked by the real Lean 4.35 prelude fixture (``tests/provers/decompose_script.py``:
conjunction/disjunction shuffles, implication chains, one theorem whose first skeleton contains a false step, one
whose step needs a second level of decomposition). The scripted model writes plans and skeletons and proves every
*lemma* it is asked about, but answers every request for a *whole* theorem with a wrong proof. Both strategies get
the same model and the same per-problem budget of ``--budget`` LLM samples; decomposition runs ``--samples``
attempts per problem (first success stops the others), whole-proof draws the whole budget.

Figures:

* ``decompose_solved``: theorems proved by ``--strategy decompose`` (max depth 1, two skeleton revisions);
* ``whole_proof_solved``: theorems proved by ``--strategy whole-proof`` with the same model and budget;
* ``lemma_cache_hit_rate``: lemma-cache hits / lookups over the decompose run (one cache for the suite; the
  concurrent samples of a problem and a revised skeleton's unchanged steps share lemmas).

This shows the mechanism (a model that can prove steps but not whole theorems gains from decomposition), not any
real model's skill: the model is scripted.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from malot.benchmarking import benchmark_args, write_result

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SUITE = ["and_swap3", "or_and", "imp_chain4", "and_assoc3", "bool_step", "chain"]


async def run(budget: int, samples: int) -> dict[str, Any]:
    """Both strategies over the suite; per-problem outcomes and LLM calls."""
    from malot.agents import Budget
    from malot.config import Settings
    from malot.lean.file_backend import LeanFileVerifier
    from malot.llm import ScriptedLLM
    from malot.provers import Prover
    from malot.provers.decompose.strategy import Decompose
    from malot.testing.prelude_lean import build_prelude_lean
    from tests.provers.decompose_script import DecomposeModel, problem, settings_data

    lean = build_prelude_lean(REPO / "tests" / ".cache" / "lean-4.35")
    settings = Settings.model_validate(settings_data(max_depth=1))
    strategy = Decompose(rounds=2, settings=settings.decompose)
    out: dict[str, Any] = {"decompose": {}, "whole_proof": {}}
    async with LeanFileVerifier(lean, workers=2, sandbox="off") as verifier:
        for name, label in (("decompose", "decompose"), ("whole-proof", "whole_proof")):
            model = DecomposeModel()
            llm = ScriptedLLM(model)
            async with Prover(settings, llm=llm, verifier=verifier) as prover:
                for theorem in SUITE:
                    calls_before = len(llm.requests)
                    began = time.perf_counter()
                    result = await prover.prove(
                        problem(theorem),
                        strategy=strategy if name == "decompose" else "whole-proof",
                        samples=samples if name == "decompose" else budget,
                        rounds=2 if name == "decompose" else 0,
                        budget=Budget(samples=budget),
                    )
                    out[label][theorem] = {
                        "proved": result.proved,
                        "llm_calls": len(llm.requests) - calls_before,
                        "lean_checks": result.lean_checks,
                        "wall_s": round(time.perf_counter() - began, 3),
                    }
    out["cache"] = {"hits": strategy.cache.hits, "lookups": strategy.cache.lookups}
    return out


def main() -> None:
    args = benchmark_args(
        __doc__,
        default_out="benchmarks/results/decompose_prelude.json",
        seeds=1,
        threads=None,
        extra=[
            (["--budget"], {"type": int, "default": 16, "help": "LLM samples per problem (both strategies)"}),
            (["--samples"], {"type": int, "default": 2, "help": "decompose attempts per problem"}),
        ],
    )
    began = time.perf_counter()
    result = asyncio.run(run(args.budget, args.samples))
    cache = result["cache"]
    figures = {
        "decompose_solved": sum(r["proved"] for r in result["decompose"].values()),
        "whole_proof_solved": sum(r["proved"] for r in result["whole_proof"].values()),
        "lemma_cache_hit_rate": cache["hits"] / cache["lookups"] if cache["lookups"] else 0.0,
    }
    details = {
        "problems": len(SUITE),
        "budget_samples_per_problem": args.budget,
        "decompose_samples_per_problem": args.samples,
        "per_problem": {"decompose": result["decompose"], "whole_proof": result["whole_proof"]},
        "cache": cache,
        "wall_s": time.perf_counter() - began,
        "note": "scripted model that proves lemmas but never whole theorems: the mechanism, not a model's skill",
    }
    write_result(args.out, figures, details=details)


if __name__ == "__main__":
    main()
