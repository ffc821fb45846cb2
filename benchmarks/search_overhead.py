"""Tactic-search overhead: expansions per second of best-first search against what the verifier's latency allows.

Setup: 32 concurrent ``best-first`` proofs (``Prover.prove``, one sample each, so 32 searches with their own proof
sessions and caches) of the recorded problem ``complex_and`` (tests/data/repl_transcripts/core/proof_branching),
on a REPL pool of replay-double processes that answer every command 100 ms after reading it (``--delay 0.1``),
with a zero-latency scripted policy proposing ``k = 8`` tactics per state (one recorded, seven the double rejects).
Each search expands 4 states (32 tactic calls), starts its proof (1 command) and has its proof re-checked whole by
the acceptance rule (1 check).

Figures:

* ``expansions_per_second``: expansions done / wall time of the 32 proofs (the pool started and warm);
* ``ideal_expansions_per_second``: expansions / (REPL commands sent x 100 ms / processes): the rate if every
  process were busy with Lean work all the time (perfect balance, no framework time);
* ``search_efficiency``: their ratio.

The figures come from a pool of 32 REPLs, one per search, the strictest case (a REPL idles whenever its one search
is between two expansions); ``details.by_pool_size`` repeats the run with fewer REPLs than searches (``--processes
32,16,8``; the quick run does 32 and 8), the usual setting, where the pool's REPLs are shared.

``details.baseline`` is the simple baseline: the same number of commands per process sent straight to the REPL
processes (no search, executor, session or pool scheduling), i.e. what the transport and the double alone cost.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from malot.benchmarking import benchmark_args, summarize, write_result

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data" / "repl_transcripts"
STATEMENT = "theorem complex_and (p q r : Prop) (h1 : p ∧ q) (h2 : q → r) : p ∧ r := by"
RIGHT = {"⊢ p ∧ r": "apply And.intro", "⊢ p": "exact h1.left", "⊢ r": "apply h2", "⊢ q": "exact h1.right"}
LATENCY = 0.1


def policy(k: int) -> Any:
    """A zero-latency policy: the recorded tactic first, then ``k - 1`` tactics the double has no record of."""
    from malot.llm.base import Capabilities, GenerationRequest
    from malot.llm.fake import ScriptedLLM

    def answer(request: GenerationRequest) -> list[dict[str, Any]]:
        goals = str(request.prompt).split("[GOAL]\n", 1)[1].split("\n[PROOFSTEP]", 1)[0]
        target = goals.split("\n\n", 1)[0].rsplit("\n", 1)[-1]
        tactics = [RIGHT.get(target, "rfl")] + [f"simp [wrong_{i}]" for i in range(k - 1)]
        return [{"text": t, "logprobs": [-0.1 * (i + 1)]} for i, t in enumerate(tactics)][: request.params.n]

    return ScriptedLLM(answer, capabilities=Capabilities(backend="scripted", logprobs=True))


def commands_sent(pool: Any) -> dict[int, int]:
    return {slot: w.process.commands_sent for slot, w in pool._workers.items()}


async def one_round(searches: int, processes: int, k: int, seed: int) -> dict[str, Any]:
    from malot.config import Settings
    from malot.lean.repl.pool import ReplPool
    from malot.provers import Problem, Prover

    argv = [sys.executable, "-m", "malot.testing.repl_replay", "--mode", "lookup", "--compose"]
    argv += ["--delay", str(LATENCY), str(DATA)]
    settings = Settings.model_validate(
        {
            "prover": {"samples": 1, "seed": seed},
            "search": {"tactics_per_state": k, "width": 1, "max_expansions": 64},
            "executor": {"llm_slots": searches, "lean_slots": processes},
            "output": {"trace": False},
        }
    )
    problem = Problem.from_statement(STATEMENT, header="")
    async with ReplPool(argv, size=processes, timeout=30, max_commands=10_000) as pool:
        await raw_baseline(pool, 1)  # every double has loaded its transcripts (32 process starts share 2 cores)
        async with Prover(settings, llm=policy(k), verifier=pool) as prover:
            before = commands_sent(pool)
            began = time.perf_counter()
            cpu0 = time.process_time()
            results = await asyncio.gather(
                *(prover.prove(problem, strategy="best-first", group_id=f"s{i}") for i in range(searches))
            )
            wall = time.perf_counter() - began
            cpu = time.process_time() - cpu0
            after = commands_sent(pool)
        baseline = await raw_baseline(pool, min(40, max(after[s] - before[s] for s in after)))
    per_process = [after[s] - before[s] for s in after]
    expansions = sum(int(a.get("expansions", 0)) for r in results for a in _search_stats(r))
    commands = sum(per_process)
    ideal_wall = commands * LATENCY / processes
    return {
        "proved": sum(r.proved for r in results),
        "expansions": expansions,
        "tactic_calls": sum(int(a.get("tactic_calls", 0)) for r in results for a in _search_stats(r)),
        "repl_commands": commands,
        "commands_per_process": {"min": min(per_process), "max": max(per_process)},
        "wall_s": wall,
        "framework_cpu_s": cpu,
        "ideal_wall_s": ideal_wall,
        "expansions_per_second": expansions / wall,
        "ideal_expansions_per_second": expansions / ideal_wall,
        "baseline": baseline,
    }


def _search_stats(result: Any) -> list[dict[str, Any]]:
    return [result.summary.get("search", {})]


async def raw_baseline(pool: Any, per_process: int) -> dict[str, float]:
    """The same number of commands per process sent straight to each REPL process, all processes at once."""
    from malot.lean.repl.protocol import Command

    workers = list(pool._workers.values())

    async def drive(process: Any) -> None:
        for _ in range(per_process):
            await process.send(Command(cmd=STATEMENT + " sorry"), 30)

    for w in workers:
        w.pins += 1  # a pinned REPL is not recycled; nothing else uses the pool meanwhile
    began = time.perf_counter()
    await asyncio.gather(*(drive(w.process) for w in workers))
    wall = time.perf_counter() - began
    for w in workers:
        w.pins -= 1
    return {"commands_per_process": per_process, "wall_s": wall, "efficiency": per_process * LATENCY / wall}


def main() -> None:
    args = benchmark_args(
        __doc__,
        default_out="benchmarks/results/search_overhead.json",
        seeds=3,
        quick_seeds=1,
        threads=None,
        extra=[
            (["--searches"], {"type": int, "default": 32, "help": "concurrent searches"}),
            (
                ["--processes"],
                {"default": None, "help": "REPL pool sizes, comma-separated; the first gives the figures"},
            ),
            (["--k"], {"type": int, "default": 8, "help": "tactics proposed per state"}),
        ],
    )
    sizes = [int(p) for p in (args.processes or ("32,8" if args.quick else "32,16,8")).split(",")]
    by_size: dict[int, list[dict[str, Any]]] = {}
    for size in sizes:
        by_size[size] = [asyncio.run(one_round(args.searches, size, args.k, seed)) for seed in args.seed_list]

    def efficiency(rounds: list[dict[str, Any]]) -> dict[str, float]:
        return summarize([r["expansions_per_second"] / r["ideal_expansions_per_second"] for r in rounds])

    rounds = by_size[sizes[0]]
    measured = summarize([r["expansions_per_second"] for r in rounds])
    ideal = summarize([r["ideal_expansions_per_second"] for r in rounds])
    write_result(
        args.out,
        {
            "expansions_per_second": measured["mean"],
            "ideal_expansions_per_second": ideal["mean"],
            "search_efficiency": efficiency(rounds)["mean"],
        },
        details={
            "searches": args.searches,
            "processes": sizes[0],
            "tactics_per_state": args.k,
            "latency_s": LATENCY,
            "rounds": rounds,
            "expansions_per_second": measured,
            "ideal_expansions_per_second": ideal,
            "search_efficiency": efficiency(rounds),
            "baseline_efficiency": summarize([r["baseline"]["efficiency"] for r in rounds]),
            "by_pool_size": {
                str(size): {
                    "search_efficiency": efficiency(rs),
                    "baseline_efficiency": summarize([r["baseline"]["efficiency"] for r in rs]),
                    "expansions_per_second": summarize([r["expansions_per_second"] for r in rs]),
                    "ideal_expansions_per_second": summarize([r["ideal_expansions_per_second"] for r in rs]),
                }
                for size, rs in by_size.items()
            },
        },
    )


if __name__ == "__main__":
    main()
