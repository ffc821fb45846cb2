"""What every benchmark script shares: the command line, seeds, mean ± spread, and the one-JSON-object result.

Every benchmark in ``benchmarks/`` and ``plugins/<family>/benchmarks/`` has one shape::

    python benchmarks/NAME.py --quick --out FILE

``--quick`` finishes in under a minute on 2 cores; the result is one JSON object whose top-level keys are the
figures (numbers) and whose ``details`` holds everything else. A claim benchmark runs several seeds and reports
each figure as a mean with its spread (:func:`summarize`), against its baselines in the same run.

Typical use::

    from malot.benchmarking import benchmark_args, summarize, write_result

    args = benchmark_args(__doc__, default_out="results/my_claim.json", seeds=5, quick_seeds=2)
    runs = [run_one(seed) for seed in args.seed_list]
    write_result(args.out, {"ratio": summarize([r["ratio"] for r in runs])["mean"]}, details={"runs": runs})
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["benchmark_args", "environment", "mean", "summarize", "write_result"]


def benchmark_args(
    description: str | None,
    *,
    default_out: str,
    seeds: int = 3,
    quick_seeds: int | None = None,
    threads: int | None = 1,
    extra: Sequence[tuple[Sequence[str], Mapping[str, Any]]] = (),
) -> argparse.Namespace:
    """Parse ``--quick``, ``--out FILE``, ``--seed`` (first seed), ``--seeds N`` and ``--threads`` (torch CPU threads).

    The namespace gets ``seed_list`` (``seeds`` seeds from ``--seed``; ``quick_seeds`` of them under ``--quick``).
    ``extra`` adds benchmark-specific options as ``(flags, argparse keyword arguments)`` pairs. ``threads=None``
    leaves torch alone (benchmarks that do not use torch).
    """
    first_line = (description or "").strip().splitlines()[0] if description and description.strip() else None
    parser = argparse.ArgumentParser(description=first_line)
    parser.add_argument("--quick", action="store_true", help="a smaller run that finishes in under a minute")
    parser.add_argument("--out", type=Path, default=Path(default_out), help="where to write the JSON result")
    parser.add_argument("--seed", type=int, default=0, help="the first seed")
    parser.add_argument("--seeds", type=int, default=None, help=f"number of seeds (default {seeds})")
    if threads is not None:
        parser.add_argument("--threads", type=int, default=threads, help=f"torch CPU threads (default {threads})")
    for flags, kwargs in extra:
        parser.add_argument(*flags, **dict(kwargs))
    args = parser.parse_args()
    count = args.seeds if args.seeds is not None else (quick_seeds if args.quick and quick_seeds else seeds)
    if count < 1:
        parser.error("--seeds must be at least 1")
    args.seed_list = [args.seed + i for i in range(count)]
    os.environ.setdefault("OMP_NUM_THREADS", str(threads or 1))
    if threads is not None:
        try:
            import torch
        except ImportError:  # a benchmark that does not need torch
            pass
        else:
            torch.set_num_threads(args.threads)
    return args


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean (NaN for no values)."""
    return sum(values) / len(values) if values else math.nan


def summarize(values: Sequence[float]) -> dict[str, float]:
    """``mean``, ``std`` (sample standard deviation; 0 for one value), ``min``, ``max`` and ``n`` of ``values``."""
    vals = [float(v) for v in values]
    if not vals:
        return {"mean": math.nan, "std": math.nan, "min": math.nan, "max": math.nan, "n": 0}
    return {
        "mean": mean(vals),
        "std": statistics.stdev(vals) if len(vals) > 1 else 0.0,
        "min": min(vals),
        "max": max(vals),
        "n": len(vals),
    }


def environment() -> dict[str, Any]:
    """Where and when a benchmark ran: machine, Python, core count, load average, UTC time."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan, math.nan, math.nan)
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_1m": load[0],
        "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_result(out: Path | str, figures: Mapping[str, Any], *, details: Mapping[str, Any] | None = None) -> None:
    """Write one JSON object (the figures at top level, ``details`` beside them) and echo the figures.

    Every top-level figure must be a number (or ``None`` where it could not be measured; say why in ``details``).
    """
    for key, value in figures.items():
        if key == "details":
            raise ValueError("pass details with details=..., not as a figure")
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise TypeError(f"figure {key!r} must be a number, got {type(value).__name__}")
    result: dict[str, Any] = dict(figures)
    result["details"] = {"environment": environment(), **dict(details or {})}
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    print(json.dumps(dict(figures), indent=2))
