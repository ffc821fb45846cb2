"""Tool-calling loop throughput and overhead per call: ToolAgent with a scripted model and a no-op tool, many loops
concurrently on one executor, against the same tool called directly through the same source in the same run.

Each loop is a scripted conversation of ``calls`` turns that each call the no-op tool once, then an answer; so
a loop's time per call holds one model turn (the scripted model), two executor steps (model, tools), argument
parsing and validation, the call, the tool message and the trace notes. The direct baseline awaits
``RegistrySource.call_tool("noop", {})`` (validation + the call) in a plain loop. ``overhead_ms_per_call`` is the
difference of the mean times per call (wall clock; ``details.cpu_overhead_ms_per_call`` is the same difference in
this process's CPU time, which a loaded machine inflates less). The no-op tool is async (it runs on the event
loop); ``details`` also has the figures for a sync no-op (run in a worker thread, as ordinary sync tools are).

    python benchmarks/tool_loop.py --quick --out tool_loop.json
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from malot.agents import Executor, ToolAgent
from malot.benchmarking import benchmark_args, summarize, write_result
from malot.llm import ScriptedLLM
from malot.tools import RegistrySource, ToolRegistry, tool

REGISTRY = ToolRegistry()


@tool(registry=REGISTRY, tags=("benchmark",))
async def noop() -> int:
    """Do nothing (async)."""
    return 0


@tool(registry=REGISTRY, tags=("benchmark",))
def noop_sync() -> int:
    """Do nothing (sync: runs in a worker thread)."""
    return 0


def script(name: str, calls: int) -> list[Any]:
    turn = {"text": "", "tool_calls": [{"name": name, "arguments": {}}]}
    return [turn] * calls + ["done"]


async def loops(name: str, n_loops: int, calls: int) -> dict[str, float]:
    source = RegistrySource(REGISTRY, name="bench")
    executor = Executor(limits={"llm": 64})
    agents = [
        ToolAgent(ScriptedLLM(script(name, calls)), source, max_steps=calls + 1, tool_timeout=None)
        for _ in range(n_loops)
    ]
    began, cpu = time.perf_counter(), time.process_time()
    results = await asyncio.gather(*(a.run("benchmark", executor=executor) for a in agents))
    wall, cpu = time.perf_counter() - began, time.process_time() - cpu
    made = sum(len(r.tool_calls) for r in results)
    assert all(r.answered for r in results) and made == n_loops * calls
    return {"calls": made, "wall_s": wall, "cpu_s": cpu, "calls_per_second": made / wall}


async def direct(name: str, total: int) -> dict[str, float]:
    source = RegistrySource(REGISTRY, name="bench")
    began, cpu = time.perf_counter(), time.process_time()
    for _ in range(total):
        await source.call_tool(name, {})
    wall, cpu = time.perf_counter() - began, time.process_time() - cpu
    return {"calls": total, "wall_s": wall, "cpu_s": cpu, "calls_per_second": total / wall}


def main() -> None:
    args = benchmark_args(__doc__, default_out="tool_loop.json", seeds=5, quick_seeds=3, threads=None)
    n_loops, calls = (64, 10) if args.quick else (256, 20)
    runs: list[dict[str, Any]] = []
    for _ in args.seed_list:  # the workload is deterministic; repeats measure the timing spread
        loop = asyncio.run(loops("noop", n_loops, calls))
        base = asyncio.run(direct("noop", n_loops * calls))
        loop_sync = asyncio.run(loops("noop_sync", n_loops, calls))
        base_sync = asyncio.run(direct("noop_sync", n_loops * calls))
        runs.append(
            {
                "loop": loop,
                "direct": base,
                "overhead_ms_per_call": 1000 * (1 / loop["calls_per_second"] - 1 / base["calls_per_second"]),
                "cpu_overhead_ms_per_call": 1000 * (loop["cpu_s"] / loop["calls"] - base["cpu_s"] / base["calls"]),
                "sync_loop": loop_sync,
                "sync_direct": base_sync,
                "sync_overhead_ms_per_call": 1000
                * (1 / loop_sync["calls_per_second"] - 1 / base_sync["calls_per_second"]),
            }
        )
    loop_rate = summarize([r["loop"]["calls_per_second"] for r in runs])
    direct_rate = summarize([r["direct"]["calls_per_second"] for r in runs])
    overhead = summarize([r["overhead_ms_per_call"] for r in runs])
    write_result(
        args.out,
        {
            "tool_calls_per_second": loop_rate["mean"],
            "direct_calls_per_second": direct_rate["mean"],
            "overhead_ms_per_call": overhead["mean"],
        },
        details={
            "loops": n_loops,
            "calls_per_loop": calls,
            "tool_calls_per_second": loop_rate,
            "direct_calls_per_second": direct_rate,
            "overhead_ms_per_call": overhead,
            "loop_vs_direct_ratio": loop_rate["mean"] / direct_rate["mean"],
            "cpu_overhead_ms_per_call": summarize([r["cpu_overhead_ms_per_call"] for r in runs]),
            "load_average_1min": os.getloadavg()[0],
            "sync_tool_overhead_ms_per_call": summarize([r["sync_overhead_ms_per_call"] for r in runs]),
            "runs": runs,
            "goal": "overhead below 1 ms per call",
        },
    )


if __name__ == "__main__":
    main()
