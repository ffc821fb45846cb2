"""Load on ``malot serve``: 200 concurrent job submissions against a queue of 50, a kill -9 and restart mid-run.

The server runs for real (uvicorn on 127.0.0.1, a subprocess) with the scripted model and the real Lean 4.35 test
fixture on the prelude theorem suite (tests/data/prelude_suite). Every request must be answered (202 or 429), and
every accepted job must finish after the restart: ``lost_jobs`` counts those that did not. Baseline in the same
run: the same burst of concurrent requests to ``/health`` (the HTTP stack with no job work).

    python benchmarks/serve_load.py --quick --out serve_load.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from malot.testing.prelude_lean import build_prelude_lean
from malot.testing.server import ServerProcess, submit_burst, wait_all_finished

REPO = Path(__file__).resolve().parent.parent
SUITE = REPO / "tests" / "data" / "prelude_suite" / "prelude_suite.jsonl"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _health_burst(url: str, n: int) -> float:
    async with httpx.AsyncClient(base_url=url, limits=httpx.Limits(max_connections=n)) as client:
        started = time.perf_counter()
        replies = await asyncio.gather(*(client.get("/health") for _ in range(n)))
        elapsed = time.perf_counter() - started
    assert all(r.status_code == 200 for r in replies)
    return n / elapsed


async def run(requests: int, queue_size: int, workers: int, work: Path) -> dict[str, Any]:
    records = [json.loads(line) for line in SUITE.read_text(encoding="utf-8").splitlines() if line.strip()][:20]
    script = work / "script.json"
    script.write_text(json.dumps({f"theorem {r['name']} ": f"  {r['proof']}\n```" for r in records}))
    config = work / "malot.toml"
    config.write_text(
        '[prover]\nstrategy = "whole-proof"\ntemplate = "deepseek-prover-v1.5"\nsamples = 1\n'
        '[retrieval]\nretriever = "none"\nk = 0\n[lean]\nsandbox = "off"\npool_size = 2\n'
    )
    lean = build_prelude_lean(REPO / "tests" / ".cache" / "lean-4.35")
    args = ["--model", f"script:{script}", "--lean", str(lean), "--store", str(work / "jobs.sqlite"),
            "--queue-size", str(queue_size), "--workers", str(workers)]  # fmt: skip
    bodies = [{"statement": r["statement"], "header": r["header"]} for r in (records * requests)[:requests]]
    log = work / "server.log"
    server = ServerProcess(args, config=config, log=log).start()
    try:
        health_rps = await _health_burst(server.url, requests)
        burst = await submit_burst(server.url, bodies)
        await asyncio.sleep(0.3)
        server.kill()  # SIGKILL in the middle of the run
        restarted_at = time.perf_counter()
        server = ServerProcess(args, config=config, port=server.port, log=log).start()
        restart_s = time.perf_counter() - restarted_at
        views = await wait_all_finished(server.url, burst.accepted, timeout_s=600)
        drained_s = time.perf_counter() - restarted_at
    finally:
        server.kill()
    finished = sum(1 for v in views.values() if v["status"] == "proved")
    rps = requests / burst.wall_s
    return {
        "requests_per_second": rps,
        "p50_submit_ms": statistics.median(burst.latencies_ms),
        "p99_submit_ms": _percentile(burst.latencies_ms, 0.99),
        "accepted": len(burst.accepted),
        "rejected_429": burst.rejected_429,
        "lost_jobs": len(burst.accepted) - finished,
        "details": {
            "requests": requests,
            "queue_size": queue_size,
            "workers": workers,
            "other_status_codes": burst.other,
            "retry_after_s_min_max": [min(burst.retry_after, default=0), max(burst.retry_after, default=0)],
            "baseline_health_requests_per_second": health_rps,
            "submit_vs_health_throughput_ratio": rps / health_rps,
            "restart_seconds": restart_s,
            "drain_after_restart_seconds": drained_s,
            "statuses": sorted({v["status"] for v in views.values()}),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the default sizes already finish within a minute")
    parser.add_argument("--out", default="serve_load.json")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--queue-size", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = asyncio.run(run(args.requests, args.queue_size, args.workers, Path(tmp)))
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "details"}, indent=2))


if __name__ == "__main__":
    main()
