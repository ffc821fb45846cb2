"""Load on ``malot serve``: 200 concurrent job submissions against a queue of 50, a kill -9 and restart mid-run.

The server runs for real (uvicorn on 127.0.0.1, a subprocess) with the scripted model and the real Lean 4.35 test
fixture on the prelude theorem suite (tests/data/prelude_suite). Each repeat:

1. 200 ``GET /health`` at once (the baseline: the HTTP stack with no job work), then 200 ``POST /v1/jobs`` at
   once: every request must be answered (202 or 429);
2. waits until the job store (the SQLite file, read from outside) shows jobs running *and* jobs queued, then
   sends SIGKILL, so the kill provably lands mid-run (``unfinished_at_kill`` counts the jobs it caught);
3. restarts the server on the same store and waits for every accepted job. ``lost_jobs`` counts real losses: a job
   the restarted server does not know (vanished) or one that never finishes (stuck, within 120 s). Jobs that
   finished without a proof are counted apart (``not_proved_jobs``); ``requeued_jobs`` counts the jobs that were
   running at the kill and were queued again by the restart.

4. on the restarted server, a storage stall: the store's write lock is held from outside for 1 s while 10
   submissions wait for it, and ``/health`` is probed one request after another (``stall_health_max_ms``, the
   longest probe: how long the server could not answer at all; a server whose event loop waits on SQLite is deaf
   until the stall ends).

Latencies are per request, from the client's send to the full answer; each figure is the mean over the repeats
(spread in ``details``). ``--server-src`` runs the server from another source tree for before/after comparisons.

    python benchmarks/serve_load.py --quick --out serve_load.json
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from malot.benchmarking import benchmark_args, summarize, write_result
from malot.testing.prelude_lean import build_prelude_lean
from malot.testing.server import ServerProcess, collect_outcomes, store_counts, submit_burst, wait_for_store

REPO = Path(__file__).resolve().parent.parent
SUITE = REPO / "tests" / "data" / "prelude_suite" / "prelude_suite.jsonl"
#: How long the storage stall holds the store's write lock.
STALL_SECONDS = 1.0


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _health_burst(url: str, n: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=url, limits=httpx.Limits(max_connections=n)) as client:

        async def one() -> None:
            began = time.perf_counter()
            reply = await client.get("/health")
            latencies.append(1000 * (time.perf_counter() - began))
            assert reply.status_code == 200

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        elapsed = time.perf_counter() - started
    return n / elapsed, latencies


async def _storage_stall(url: str, store: Path, body: dict[str, Any], stall_s: float) -> dict[str, float]:
    """Hold the job store's write lock from outside for ``stall_s`` (a slow disk, a backup, another writer) while 10
    submissions wait for it, probing ``/health`` one request after another meanwhile: the longest probe is the
    longest time the server could not answer (a server whose event loop waits on SQLite is deaf until the stall
    ends)."""
    lock = sqlite3.connect(store, isolation_level=None, timeout=30.0)
    probes: list[float] = []
    submit_ms: list[float] = []
    released = asyncio.Event()
    async with httpx.AsyncClient(base_url=url, timeout=60.0, limits=httpx.Limits(max_connections=20)) as client:

        async def submit() -> None:
            began = time.perf_counter()
            reply = await client.post("/v1/jobs", json=body)
            submit_ms.append(1000 * (time.perf_counter() - began))
            assert reply.status_code == 202, reply.text

        async def probe() -> None:
            while not released.is_set():
                began = time.perf_counter()
                reply = await client.get("/health")
                probes.append(1000 * (time.perf_counter() - began))
                assert reply.status_code == 200
                await asyncio.sleep(0.02)

        lock.execute("BEGIN IMMEDIATE")
        submits = [asyncio.create_task(submit()) for _ in range(10)]
        prober = asyncio.create_task(probe())
        await asyncio.sleep(stall_s)
        lock.execute("COMMIT")
        lock.close()
        released.set()
        await prober
        await asyncio.gather(*submits)
    return {
        "stall_health_max_ms": max(probes),
        "stall_health_probes": len(probes),
        "stall_submit_p99_ms": _percentile(submit_ms, 0.99),
    }


async def one_round(requests: int, queue_size: int, workers: int, work: Path, lean: Path) -> dict[str, Any]:
    """One burst, kill -9 mid-run, restart and drain; the figures of this repeat."""
    records = [json.loads(line) for line in SUITE.read_text(encoding="utf-8").splitlines() if line.strip()][:20]
    script = work / "script.json"
    script.write_text(json.dumps({f"theorem {r['name']} ": f"  {r['proof']}\n```" for r in records}))
    config = work / "malot.toml"
    config.write_text(
        '[prover]\nstrategy = "whole-proof"\ntemplate = "deepseek-prover-v1.5"\nsamples = 1\n'
        '[retrieval]\nretriever = "none"\nk = 0\n[lean]\nsandbox = "off"\npool_size = 2\n'
    )
    store = work / "jobs.sqlite"
    args = ["--model", f"script:{script}", "--lean", str(lean), "--store", str(store),
            "--queue-size", str(queue_size), "--workers", str(workers)]  # fmt: skip
    bodies = [{"statement": r["statement"], "header": r["header"]} for r in (records * requests)[:requests]]
    log = work / "server.log"
    server = ServerProcess(args, config=config, log=log).start()
    try:
        health_rps, health_ms = await _health_burst(server.url, requests)
        burst = await submit_burst(server.url, bodies)
        await wait_for_store(store, lambda c: c["running"] >= 1 and c["queued"] >= 1)
        server.kill()  # SIGKILL while jobs are running and queued
        at_kill = store_counts(store)
        restarted_at = time.perf_counter()
        server = ServerProcess(args, config=config, port=server.port, log=log).start()
        restart_s = time.perf_counter() - restarted_at
        outcomes = await collect_outcomes(server.url, burst.accepted, timeout_s=120)
        drained_s = time.perf_counter() - restarted_at
        stall = await _storage_stall(server.url, store, bodies[0], STALL_SECONDS)
    finally:
        server.kill()
    after = store_counts(store)
    unfinished = at_kill["queued"] + at_kill["running"]
    return {
        "requests_per_second": requests / burst.wall_s,
        "p50_submit_ms": statistics.median(burst.latencies_ms),
        "p99_submit_ms": _percentile(burst.latencies_ms, 0.99),
        "baseline_health_requests_per_second": health_rps,
        "baseline_health_p99_ms": _percentile(health_ms, 0.99),
        "accepted": len(burst.accepted),
        "rejected_429": burst.rejected_429,
        "other_status_codes": burst.other,
        "retry_after_s_min_max": [min(burst.retry_after, default=0), max(burst.retry_after, default=0)],
        "unfinished_at_kill": unfinished,
        "running_at_kill": at_kill["running"],
        "requeued_jobs": after["requeued"],
        "proved_jobs": outcomes.count("proved"),
        "not_proved_jobs": len(outcomes.status) - outcomes.count("proved"),
        "lost_jobs": outcomes.lost,
        "vanished_jobs": outcomes.vanished,
        "stuck_jobs": outcomes.stuck,
        **stall,
        "restart_seconds": restart_s,
        "drain_after_restart_seconds": drained_s,
        "statuses": sorted(set(outcomes.status.values())),
    }


def main() -> None:
    """Run the repeats and write the result."""
    args = benchmark_args(
        __doc__,
        default_out="serve_load.json",
        seeds=5,
        quick_seeds=2,
        threads=None,
        extra=[
            (["--requests"], {"type": int, "default": 200}),
            (["--queue-size"], {"type": int, "default": 50}),
            (["--workers"], {"type": int, "default": 2}),
            (
                ["--server-src"],
                {"default": None, "help": "run the server from another malot source tree (before/after comparisons)"},
            ),
        ],
    )
    if args.server_src:  # the server subprocess imports malot from there: its PYTHONPATH first, and not the cwd
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [args.server_src, os.environ.get("PYTHONPATH")]))
        os.environ["PYTHONSAFEPATH"] = "1"
    server_malot = subprocess.run(
        [sys.executable, "-c", "import malot; print(malot.__file__)"], capture_output=True, text=True, check=True
    ).stdout.strip()
    lean = build_prelude_lean(REPO / "tests" / ".cache" / "lean-4.35")
    rounds = []
    for _ in args.seed_list:  # repeats (the scripted model and Lean are deterministic; the seed only counts them)
        with tempfile.TemporaryDirectory() as tmp:
            rounds.append(asyncio.run(one_round(args.requests, args.queue_size, args.workers, Path(tmp), lean)))
    keys = ["requests_per_second", "p50_submit_ms", "p99_submit_ms", "baseline_health_p99_ms", "stall_health_max_ms"]
    spread = {k: summarize([r[k] for r in rounds]) for k in [*keys, "baseline_health_requests_per_second"]}
    figures: dict[str, float | int] = {k: spread[k]["mean"] for k in keys}
    figures["p99_submit_vs_health_ratio"] = spread["p99_submit_ms"]["mean"] / spread["baseline_health_p99_ms"]["mean"]
    for k in ["accepted", "rejected_429", "unfinished_at_kill", "requeued_jobs", "not_proved_jobs", "lost_jobs"]:
        figures[k] = sum(int(r[k]) for r in rounds)
    write_result(
        args.out,
        figures,
        details={
            "repeats": len(rounds),
            "requests": args.requests,
            "queue_size": args.queue_size,
            "workers": args.workers,
            "server_src": args.server_src or str(REPO),
            "server_imports_malot_from": server_malot,
            "spread": spread,
            "counts_are": "sums over the repeats",
            "stall_seconds": STALL_SECONDS,
            "rounds": rounds,
        },
    )


if __name__ == "__main__":
    main()
