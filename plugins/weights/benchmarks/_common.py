"""Shared command line and JSON writing of the weights plugin's claim benchmarks."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")


def parse(description: str, default_out: str) -> argparse.Namespace:
    """``--quick`` (under a minute on 2 cores), ``--out FILE`` and ``--seed``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a smaller run that finishes in under a minute")
    parser.add_argument("--out", type=Path, default=Path(default_out))
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def write(out: Path, result: dict[str, Any]) -> None:
    """Write one JSON object and echo its top-level figures."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "details"}, indent=2))


def mean(values: list[float]) -> float:
    """Arithmetic mean."""
    return sum(values) / len(values)
