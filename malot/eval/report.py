"""Reports of a run (``malot eval report RUN``) and comparisons of two runs (``malot eval compare A B``).

:func:`summarize` reads a store into one JSON-ready dict (run metadata, pass@k for every k up to the samples
drawn, solved per category, the compute ledger, the solved and failed lists, known-defective statements);
:func:`write_report` writes it as ``report.json`` and ``report.md`` plus PNG plots under ``RUN/report/``.
"""

from __future__ import annotations

import contextlib
import json
import statistics
from pathlib import Path
from typing import Any

from malot.errors import BackendUnavailableError
from malot.eval.metrics import category_table, compute_ledger, pass_at_k_curve
from malot.eval.store import ResultsStore

__all__ = ["compare_runs", "summarize", "write_comparison", "write_report"]


def summarize(store: ResultsStore) -> dict[str, Any]:
    """Everything a report shows, as a JSON-ready dict."""
    info = store.run_info()
    rows = store.problem_rows()
    done = [r for r in rows if r.status == "done"]
    final = store.attempts(final_only=True)
    every = store.attempts()
    sessions = store.sessions()
    solved = [r for r in done if r.solved]
    curve = pass_at_k_curve([(r.n, r.c) for r in done])
    lean_times = [float(a["lean_s"]) for a in final if a["lean_s"] > 0]
    ledger = compute_ledger(every, {int(a["id"]) for a in final}, sessions, len(solved))
    early_stop = bool(info["meta"].get("first_success", False))
    cost = _cost(info, rows, every)
    return {
        "run": {
            "run_id": info["run_id"],
            "dataset": info["dataset"],
            "strategy": info["strategy"],
            "model": info["model"],
            "samples": info["samples"],
            "created": info["created"],
            "git_commit": info["meta"].get("git_commit"),
            "lean_toolchain": info["meta"].get("lean_toolchain"),
            "versions": info["meta"].get("versions", {}),
            "backend": info["meta"].get("backend"),
            "sessions": len(sessions),
            "complete": len(done) == len(rows),
        },
        "problems": len(rows),
        "done": len(done),
        "solved": len(solved),
        "solve_rate": len(solved) / len(done) if done else 0.0,
        "pass_at_k": {str(k): v for k, v in curve.items()},
        "pass_at_k_exact": not early_stop,
        "categories": category_table(rows),
        "ledger": ledger.to_dict(),
        "cost": cost,
        "verification": {
            "checks": len(lean_times),
            "median_s": statistics.median(lean_times) if lean_times else None,
            "p90_s": _quantile(lean_times, 0.9),
            "max_s": max(lean_times) if lean_times else None,
            "times_s": lean_times,
        },
        "solved_problems": [r.name for r in solved],
        "unsolved_problems": [r.name for r in done if not r.solved],
        "open_problems": [r.name for r in rows if r.status != "done"],
        "errors": {r.name: r.error for r in done if r.error},
        "budget_stops": {r.name: r.stopped for r in done if r.stopped and r.stopped != "first_success"},
        "defects": {r.name: {"reason": r.defect, "solved": r.solved} for r in rows if r.defect},
        "per_problem": {
            r.name: {
                "category": r.category,
                "split": r.split,
                "n": r.n,
                "c": r.c,
                "solved": r.solved,
                "wall_s": r.wall_s,
                "status": r.status,
            }
            for r in rows
        },
        "proofs": {r.name: r.proof for r in solved if r.proof},
    }


def _cost(info: dict[str, Any], rows: list[Any], attempts: list[dict[str, Any]]) -> dict[str, Any]:
    """Cost per problem (:mod:`malot.eval.cost`), priced by the run's ``[pricing]`` overlaid by the current one."""
    from malot.eval.cost import cost_summary, price_for, problem_costs

    pricing: dict[str, Any] = dict((info.get("settings") or {}).get("pricing") or {})
    from malot.config import load_settings
    from malot.errors import MalotError

    with contextlib.suppress(MalotError):  # a broken local config must not stop the report of a finished run
        pricing.update({k: v.model_dump() for k, v in load_settings().pricing.items()})
    model = str(info.get("model", ""))
    costs = problem_costs(attempts, rows, model=model, pricing=pricing)
    price = price_for(model, pricing)
    return {
        "model": model,
        "price_per_million": {"prompt": price[0], "completion": price[1]} if price else None,
        "summary": cost_summary(costs, priced=price is not None),
        "per_problem": {c.problem: c.to_dict() for c in costs},
    }


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(int(q * (len(ordered) - 1) + 0.5), len(ordered) - 1)
    return ordered[index]


def write_report(store: ResultsStore, out_dir: str | Path | None = None, *, plots: bool = True) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and (with matplotlib) PNG plots; returns the written paths by kind."""
    from malot.eval import plots as plotting

    out = Path(out_dir) if out_dir is not None else store.run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(store)
    written: dict[str, Path] = {}
    if plots:
        try:
            written.update(plotting.report_plots(summary, out))
        except BackendUnavailableError as exc:  # the report is still useful without its plots
            summary["plots_missing"] = str(exc)
    json_path = out / "report.json"
    json_path.write_text(json.dumps(summary, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    md_path = out / "report.md"
    md_path.write_text(render_markdown(summary, {k: v.name for k, v in written.items()}), encoding="utf-8")
    written["json"] = json_path
    written["markdown"] = md_path
    return written


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def render_markdown(summary: dict[str, Any], images: dict[str, str] | None = None) -> str:
    """The Markdown report of :func:`summarize`'s dict (``images`` maps plot kinds to file names)."""
    images = images or {}
    run = summary["run"]
    led = summary["ledger"]
    per = led["per_solved"]
    lines = [
        f"# Evaluation report: {run['run_id']}",
        "",
        f"- dataset: `{run['dataset']}`, strategy: `{run['strategy']}`, model: `{run['model']}`",
        f"- samples per problem: {run['samples']}; sessions: {run['sessions']}; backend: {run['backend']}",
        f"- git commit: `{run['git_commit']}`; Lean: `{run['lean_toolchain']}`; malot {run['versions'].get('malot')}",
        f"- problems: {summary['problems']}, done: {summary['done']}, **solved: {summary['solved']}**"
        f" ({100 * summary['solve_rate']:.1f}% of done)" + ("" if run["complete"] else " — run not complete"),
        "",
        "## pass@k",
        "",
        "Unbiased estimator 1 - C(n-c, k)/C(n, k), averaged over finished problems."
        + (
            ""
            if summary["pass_at_k_exact"]
            else " Samples stopped at a problem's first success, so pass@k for k < n is a lower bound"
            " (pass@n, the solved share, is exact)."
        ),
        "",
        "| k | pass@k |",
        "| ---: | ---: |",
    ]
    curve = summary["pass_at_k"]
    last = max((int(k) for k in curve), default=0)
    shown = [k for k in curve if last <= 16 or int(k) == last or int(k) & (int(k) - 1) == 0]
    lines += [f"| {k} | {100 * curve[k]:.2f}% |" for k in shown]
    if len(shown) < len(curve):
        lines += ["", "(powers of two and n shown; report.json has every k)"]
    if "pass_at_k" in images:
        lines += ["", f"![pass@k]({images['pass_at_k']})"]
    lines += ["", "## Solved by category", "", "| category | problems | solved |", "| --- | ---: | ---: |"]
    lines += [f"| {cat} | {row['problems']} | {row['solved']} |" for cat, row in summary["categories"].items()]
    if "categories" in images:
        lines += ["", f"![solved by category]({images['categories']})"]
    lines += [
        "",
        "## Compute ledger",
        "",
        "| | total | per solved problem |",
        "| --- | ---: | ---: |",
        f"| samples | {led['samples']} | {_fmt(per['samples'], 1)} |",
        f"| attempts (incl. {led['abandoned_attempts']} of interrupted sessions) | {led['attempts']} | |",
        f"| tokens in / out | {led['tokens_in']} / {led['tokens_out']} | {_fmt(per['tokens'], 0)} |",
        f"| Lean CPU-seconds | {led['lean_cpu_s']:.2f} | {_fmt(per['lean_cpu_s'])} |",
        f"| Lean wall seconds | {led['lean_s']:.2f} | |",
        f"| run wall seconds | {led['run_wall_s']:.2f} | {_fmt(per['run_wall_s'])} |",
        *(
            [f"| tactic search: expansions / tactic calls | {led['expansions']} / {led['tactic_calls']} | |"]
            if led.get("expansions") or led.get("tactic_calls")
            else []
        ),
        *_cost_lines(summary.get("cost")),
        "",
        "## Verification time",
        "",
        f"{summary['verification']['checks']} checks; median {_fmt(summary['verification']['median_s'], 3)} s,"
        f" p90 {_fmt(summary['verification']['p90_s'], 3)} s, max {_fmt(summary['verification']['max_s'], 3)} s.",
    ]
    if "verification" in images:
        lines += ["", f"![verification time]({images['verification']})"]
    if summary["defects"]:
        lines += ["", "## Known-defective statements", "", "| problem | reason | solved |", "| --- | --- | --- |"]
        lines += [f"| {n} | {d['reason']} | {'yes' if d['solved'] else 'no'} |" for n, d in summary["defects"].items()]
    if summary["budget_stops"]:
        lines += ["", "## Stopped by a budget", ""]
        lines += [f"- `{name}`: {reason}" for name, reason in summary["budget_stops"].items()]
    if summary["errors"]:
        lines += ["", "## Errors", ""]
        lines += [f"- `{name}`: {err}" for name, err in summary["errors"].items()]
    lines += ["", "## Problems", "", f"Solved ({len(summary['solved_problems'])}): "]
    lines += [", ".join(f"`{n}`" for n in summary["solved_problems"]) or "none"]
    lines += ["", f"Unsolved ({len(summary['unsolved_problems'])}): "]
    lines += [", ".join(f"`{n}`" for n in summary["unsolved_problems"]) or "none"]
    if summary["open_problems"]:
        lines += ["", f"Not finished ({len(summary['open_problems'])}): "]
        lines += [", ".join(f"`{n}`" for n in summary["open_problems"])]
    return "\n".join(lines) + "\n"


def _cost_lines(cost: dict[str, Any] | None) -> list[str]:
    """The report's cost-per-problem table (money only when the model has a ``[pricing]`` entry)."""
    if not cost:
        return []
    summary = cost["summary"]
    price = cost["price_per_million"]
    lines = [
        "",
        "## Cost per problem",
        "",
        f"Score {summary['solved']}/{summary['problems']} ({100 * summary['score']:.1f}%). "
        + (
            f"Prices per million tokens: prompt {price['prompt']}, completion {price['completion']}."
            if price
            else "No [pricing] entry for this model: money is not shown."
        ),
        "",
        "| | mean per problem | median per problem | per solved problem | total |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    names = {
        "cost": "cost",
        "llm_calls": "LLM calls",
        "tokens_in": "prompt tokens",
        "tokens_out": "completion tokens",
        "lean_cpu_s": "Lean CPU-seconds",
        "wall_s": "wall seconds",
    }
    for key, label in names.items():
        row = summary[key]
        if key == "cost" and not price:
            continue
        digits = 4 if key == "cost" else 2
        lines.append(
            f"| {label} | {_fmt(row['mean_per_problem'], digits)} | {_fmt(row['median_per_problem'], digits)} |"
            f" {_fmt(row['per_solved'], digits)} | {_fmt(row['total'], digits)} |"
        )
    return lines


def compare_runs(a: ResultsStore, b: ResultsStore) -> dict[str, Any]:
    """Problems solved by one run and not the other (over the problems both runs finished)."""
    sa, sb = summarize(a), summarize(b)
    rows_a = {r.name: r for r in a.problem_rows() if r.status == "done"}
    rows_b = {r.name: r for r in b.problem_rows() if r.status == "done"}
    common = [n for n in rows_a if n in rows_b]
    only_a = [n for n in common if rows_a[n].solved and not rows_b[n].solved]
    only_b = [n for n in common if rows_b[n].solved and not rows_a[n].solved]
    both = [n for n in common if rows_a[n].solved and rows_b[n].solved]
    return {
        "a": {
            "run_id": sa["run"]["run_id"],
            "dir": str(a.run_dir),
            "solved": sa["solved"],
            "done": sa["done"],
            "pass_at_k": sa["pass_at_k"],
            "model": sa["run"]["model"],
            "strategy": sa["run"]["strategy"],
        },
        "b": {
            "run_id": sb["run"]["run_id"],
            "dir": str(b.run_dir),
            "solved": sb["solved"],
            "done": sb["done"],
            "pass_at_k": sb["pass_at_k"],
            "model": sb["run"]["model"],
            "strategy": sb["run"]["strategy"],
        },
        "common_problems": len(common),
        "solved_by_both": both,
        "only_a": only_a,
        "only_b": only_b,
        "neither": [n for n in common if not rows_a[n].solved and not rows_b[n].solved],
        "not_in_both": sorted(set(rows_a) ^ set(rows_b)),
        "categories": {
            cat: {
                "a": sum(rows_a[n].solved for n in common if rows_a[n].category == cat),
                "b": sum(rows_b[n].solved for n in common if rows_b[n].category == cat),
            }
            for cat in dict.fromkeys(rows_a[n].category for n in common)
        },
    }


def write_comparison(
    a: ResultsStore, b: ResultsStore, out_dir: str | Path, *, plots: bool = True
) -> tuple[dict[str, Any], dict[str, Path]]:
    """Write ``compare.json``, ``compare.md`` and a plot to ``out_dir``; returns the comparison and the paths."""
    from malot.eval import plots as plotting

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = compare_runs(a, b)
    written: dict[str, Path] = {}
    if plots:
        written["plot"] = plotting.comparison_plot(data, out / "compare.png")
    (out / "compare.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    la, lb = data["a"]["run_id"], data["b"]["run_id"]
    md = [
        f"# {la} vs {lb}",
        "",
        f"- A: `{data['a']['dir']}` ({data['a']['strategy']}, {data['a']['model']}): solved {data['a']['solved']}"
        f" of {data['a']['done']}",
        f"- B: `{data['b']['dir']}` ({data['b']['strategy']}, {data['b']['model']}): solved {data['b']['solved']}"
        f" of {data['b']['done']}",
        f"- problems finished by both: {data['common_problems']}; solved by both: {len(data['solved_by_both'])}",
        "",
        f"## Solved by A only ({len(data['only_a'])})",
        "",
        ", ".join(f"`{n}`" for n in data["only_a"]) or "none",
        "",
        f"## Solved by B only ({len(data['only_b'])})",
        "",
        ", ".join(f"`{n}`" for n in data["only_b"]) or "none",
    ]
    if "plot" in written:
        md += ["", f"![comparison]({written['plot'].name})"]
    (out / "compare.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    written["json"] = out / "compare.json"
    written["markdown"] = out / "compare.md"
    return data, written
