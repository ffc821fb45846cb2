"""Requests/s and latency through malot's OpenAI-compatible backend vs the raw ``openai`` client, same server, same run.

The script builds the tiny offline Llama (``malot dev make-tiny-model``), starts a local vLLM CPU server with it
(or uses ``--server-url``), then runs the same workload through both clients: ``--requests`` completion requests
(``--max-tokens`` new tokens each, greedy) with at most ``--concurrency`` in flight, through an identical harness
(one asyncio task per request, one semaphore). Rounds alternate malot / openai to spread drift from other load on
the machine; requests/s figures are medians over ``--repeats`` rounds per client.

``overhead_ratio`` = the median over adjacent (malot, openai) round pairs of openai requests/s / malot requests/s
(1.0: no overhead; 1.05: malot 5% slower). Pairing adjacent rounds cancels most of the drift that other processes
on a shared machine cause.

    python benchmarks/llm_overhead.py --quick --out llm_overhead.json
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from malot.benchmarking import benchmark_args, write_result

REPO = Path(__file__).resolve().parent.parent
PROMPT = "theorem add_comm' (a b : ℕ) : a + b = b + a := by"


async def _round(call: Callable[[], Awaitable[str]], requests: int, concurrency: int) -> dict[str, Any]:
    """Run ``requests`` calls with at most ``concurrency`` in flight; return requests/s and latency percentiles."""
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one() -> None:
        async with gate:
            t0 = time.perf_counter()
            text = await call()
            latencies.append(time.perf_counter() - t0)
            assert isinstance(text, str)

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(requests)))
    wall = time.perf_counter() - start
    latencies.sort()
    return {
        "requests_per_second": requests / wall,
        "wall_s": wall,
        "latency_p50_ms": 1000 * latencies[len(latencies) // 2],
        "latency_p95_ms": 1000 * latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))],
        "latency_mean_ms": 1000 * statistics.fmean(latencies),
    }


async def measure(base_url: str, model: str, args: argparse.Namespace) -> dict[str, Any]:
    """Alternate malot and openai rounds against the server; return medians and every round."""
    from openai import AsyncOpenAI

    from malot.llm import GenerationRequest, SamplingParams
    from malot.llm.openai_backend import OpenAICompatibleLLM

    params = SamplingParams(temperature=0.0, max_tokens=args.max_tokens)
    malot = OpenAICompatibleLLM(base_url, model, max_concurrency=args.concurrency, timeout_s=120)
    raw = AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=120)

    async def via_malot() -> str:
        (result,) = await malot.generate([GenerationRequest(prompt=PROMPT, params=params)])
        return result.completions[0].text

    async def via_openai() -> str:
        response = await raw.completions.create(
            model=model, prompt=PROMPT, temperature=0.0, max_tokens=args.max_tokens, n=1
        )
        return response.choices[0].text

    rounds: dict[str, list[dict[str, Any]]] = {"malot": [], "openai": []}
    clients = {"malot": via_malot, "openai": via_openai}
    try:
        for name in ("malot", "openai"):  # warm-up: connections, server caches
            await _round(clients[name], args.concurrency, args.concurrency)
        ratios: list[float] = []
        for r in range(args.repeats):
            order = ("malot", "openai") if r % 2 == 0 else ("openai", "malot")
            for name in order:
                rounds[name].append(await _round(clients[name], args.requests, args.concurrency))
            ratios.append(rounds["openai"][-1]["requests_per_second"] / rounds["malot"][-1]["requests_per_second"])
        same = await via_malot() == await via_openai()
    finally:
        await malot.aclose()
        await raw.close()

    def median(name: str, key: str) -> float:
        return float(statistics.median(x[key] for x in rounds[name]))

    malot_rps, openai_rps = median("malot", "requests_per_second"), median("openai", "requests_per_second")
    return {
        "malot_requests_per_second": malot_rps,
        "openai_requests_per_second": openai_rps,
        "overhead_ratio": float(statistics.median(ratios)),
        "details": {
            "overhead_ratio_definition": "median over adjacent round pairs of openai requests/s / malot requests/s",
            "pair_ratios": ratios,
            "ratio_of_medians": openai_rps / malot_rps,
            "http_library": malot.http_library,
            "malot_latency_p50_ms": median("malot", "latency_p50_ms"),
            "openai_latency_p50_ms": median("openai", "latency_p50_ms"),
            "malot_latency_p95_ms": median("malot", "latency_p95_ms"),
            "openai_latency_p95_ms": median("openai", "latency_p95_ms"),
            "same_greedy_text": same,
            "rounds": rounds,
        },
    }


def main() -> int:
    """Parse arguments, start (or reuse) the server, measure, and write the JSON result."""
    args = benchmark_args(
        __doc__,
        default_out="llm_overhead.json",
        seeds=1,
        threads=None,
        extra=[
            (["--requests"], {"type": int, "default": None, "help": "requests per round"}),
            (["--concurrency"], {"type": int, "default": None}),
            (["--max-tokens"], {"type": int, "default": 8}),
            (["--repeats"], {"type": int, "default": None, "help": "rounds per client"}),
            (["--server-url"], {"default": None, "help": "use this running server (http://host:port/v1#name)"}),
            (["--model-dir"], {"type": Path, "default": REPO / "tests" / ".cache" / "tiny-models"}),
        ],
    )
    args.requests = args.requests or (48 if args.quick else 128)
    args.concurrency = args.concurrency or 16
    args.repeats = args.repeats or (8 if args.quick else 16)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    started = time.perf_counter()
    server_info: dict[str, Any] = {}
    if args.server_url:
        base_url, _, model = args.server_url.partition("#")
        result = asyncio.run(measure(base_url, model or "tiny", args))
    else:
        from malot.testing.tiny_models import build_tiny_models
        from malot.testing.vllm_server import LocalVllmServer

        t0 = time.perf_counter()
        llama = build_tiny_models(args.model_dir)["llama"]
        server_info["model_build_s"] = time.perf_counter() - t0
        with LocalVllmServer(llama, served_name="tiny") as server:
            server_info["server_startup_s"] = server.startup_s
            result = asyncio.run(measure(server.base_url, "tiny", args))
    result["details"].update(
        server_info,
        workload={
            "requests_per_round": args.requests,
            "concurrency": args.concurrency,
            "max_tokens": args.max_tokens,
            "repeats": args.repeats,
            "prompt": PROMPT,
            "server": args.server_url or "local vLLM CPU server, tiny random Llama",
        },
        total_s=time.perf_counter() - started,
    )
    details = result.pop("details")
    write_result(args.out, result, details=details)
    return 0


if __name__ == "__main__":
    sys.exit(main())
