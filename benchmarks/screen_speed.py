"""Source-screen speed: seconds for a 300 KB adversarial answer, and whether the cost per KB stays flat with size.

Workloads (each screened with ``malot.lean.screen.screen_tokens`` over the MiniF2F header + answer + statement):

* ``open-in``: repeated indented ``open Nat Real in`` lines before the statement (the issue-13 input on which the
  earlier screen was quadratic: a 300 KB answer took over 100 s);
* ``mixed``: repeated lines with comments, strings, an interpolated string and escaped names.

Figures, in CPU seconds of the process (the CI machine is shared; ``--kb`` changes the 300 KB size, the keys keep
their names): ``screen_cpu_s_300kb`` (open-in, 300 KB; ``screen_wall_s_300kb`` is its wall time),
``per_kb_growth`` (seconds per KB at 300 KB / at 30 KB, open-in;
about 1 for linear work, about 10 for quadratic), ``screen_over_lex`` (screen time / lexing alone, the floor any
lexer-based screen pays), ``mixed_cpu_s_300kb`` and ``demo_screen_ms`` (mean over the shipped MiniF2F demonstrations).

    python benchmarks/screen_speed.py --quick --out screen_speed.json
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from malot.benchmarking import benchmark_args, summarize, write_result
from malot.lean.acceptance import TargetTheorem, screen
from malot.lean.lexer import code_view
from malot.lean.screen import screen_tokens

HEADER = "import Mathlib\n\nset_option maxHeartbeats 400000\n\nopen BigOperators Real Nat Topology Rat\n\n"
STMT = "theorem t1 (a b : ℕ) (h : a = b) : b = a :="
UNITS = {
    "open-in": "  open Nat Real in\n",
    "mixed": '  -- c /- x -/\n  have := "s \\" t" ++ s!"{1} {"}"}" -- «a»\n  /- nested /- c -/ -/ exact «h».symm\n',
}
REPO = Path(__file__).resolve().parents[1]


def _file(unit: str, size: int) -> tuple[str, list[tuple[int, int]]]:
    answer = unit * max(1, size // len(unit))
    code = HEADER + answer + STMT + " by\n  omega\n"
    stmt_start = len(HEADER) + len(answer)
    return code, [(len(HEADER), stmt_start), (stmt_start + len(STMT), len(code))]


def _seconds(fn: Callable[[], object]) -> float:
    """CPU seconds of this process (the machine may be shared; wall time is reported beside it)."""
    start = time.process_time()
    fn()
    return time.process_time() - start


def _wall_seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _screen_seconds(unit: str, size: int) -> float:
    code, regions = _file(unit, size)
    return _seconds(lambda: screen_tokens(code, regions, regions[0]))


def main() -> None:
    args = benchmark_args(
        __doc__,
        default_out="benchmarks/results/screen_speed.json",
        seeds=3,
        threads=None,
        extra=[(["--kb"], {"type": int, "default": 300, "help": "size of the large answer in KB (default 300)"})],
    )
    big = args.kb * 1000
    small = big // 10
    runs = []
    for _ in args.seed_list:
        code, regions = _file(UNITS["open-in"], big)
        runs.append(
            {
                "open_in_300kb": _screen_seconds(UNITS["open-in"], big),
                "open_in_300kb_wall": _wall_seconds(lambda code=code, r=regions: screen_tokens(code, r, r[0])),
                "open_in_30kb": _screen_seconds(UNITS["open-in"], small),
                "lex_300kb": _seconds(lambda code=code: code_view(code)),
                "mixed_300kb": _screen_seconds(UNITS["mixed"], big),
            }
        )
    demos = [
        json.loads(line)
        for line in (REPO / "malot" / "data" / "demos" / "minif2f_valid_solved.jsonl").read_text().splitlines()
    ]
    demo_ms = []
    for rec in demos:
        target = TargetTheorem(header=HEADER, statement=rec["formal_statement"], name=rec["name"])
        demo_ms.append(1000 * _seconds(lambda target=target, proof=rec["formal_proof"]: screen(target, proof)))
    big_s = summarize([r["open_in_300kb"] for r in runs])
    small_s = summarize([r["open_in_30kb"] for r in runs])
    lex_s = summarize([r["lex_300kb"] for r in runs])
    mixed_s = summarize([r["mixed_300kb"] for r in runs])
    wall_s = summarize([r["open_in_300kb_wall"] for r in runs])
    per_kb_growth = (big_s["mean"] / (big / 1000)) / (small_s["mean"] / (small / 1000))
    write_result(
        args.out,
        {
            "screen_cpu_s_300kb": big_s["mean"],
            "screen_wall_s_300kb": wall_s["mean"],
            "per_kb_growth": per_kb_growth,
            "screen_over_lex": big_s["mean"] / lex_s["mean"],
            "mixed_cpu_s_300kb": mixed_s["mean"],
            "demo_screen_ms": summarize(demo_ms)["mean"],
        },
        details={
            "open_in_300kb_s": big_s,
            "open_in_30kb_s": small_s,
            "lex_only_300kb_s": lex_s,
            "mixed_300kb_s": mixed_s,
            "demo_screen_ms": summarize(demo_ms),
            "demos": len(demos),
            "runs": runs,
            "open_in_300kb_wall_s": wall_s,
            "method": "time.process_time (CPU seconds) around one call each, wall time (perf_counter) beside it; "
            "screen_tokens on the assembled file (header + answer + statement + proof); demo_screen_ms is the whole "
            "acceptance.screen (extract, splice, screen)",
        },
    )


if __name__ == "__main__":
    main()
