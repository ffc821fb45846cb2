"""``malot eval``: run a benchmark evaluation, resume one, report on it, compare two runs.

Forms::

    malot eval DATASET --model M --samples N --out DIR [filters, budget, Lean, Ray options]
    malot eval --resume RUN
    malot eval report RUN
    malot eval compare RUN_A RUN_B

``DATASET`` is ``minif2f`` (shipped with malot), a JSONL file, a LeanDojo benchmark JSON file or folder, or a Lean
project folder. The first two forms are the ``run`` subcommand, which the group invokes when its first argument is
not a subcommand name.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import click

from malot.cli.common import echo_json, err_console, load_cli_settings, make_progress
from malot.errors import MalotError
from malot.eval.store import ProblemRow
from malot.provers.registry import strategy_names

__all__ = ["command"]

_SUBCOMMANDS = ("run", "report", "compare")


class _EvalGroup(click.Group):
    """A group whose default subcommand is ``run``: ``malot eval DATASET ...`` means ``malot eval run DATASET``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args:
            args = ["run"]
        elif args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        run = self.commands["run"]
        with click.Context(run, info_name="run", parent=ctx.parent) as run_ctx:
            params = [p for p in run.get_params(run_ctx) if isinstance(p, click.Option)]
            rows = [rv for p in params if (rv := p.get_help_record(run_ctx)) is not None]
        with formatter.section("Options of an evaluation run (malot eval DATASET ... / --resume RUN)"):
            formatter.write_dl(rows)
        self.format_commands(ctx, formatter)


@click.group(
    cls=_EvalGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    options_metavar="",
    subcommand_metavar="DATASET [OPTIONS] | --resume RUN | report RUN | compare RUN_A RUN_B",
)
def command() -> None:
    """Evaluate a prover on a benchmark (MiniF2F, a JSONL file, a LeanDojo benchmark, a Lean project).

    \b
    malot eval minif2f --split test --model script:answers.jsonl --samples 8 --out runs/m1
    malot eval --resume runs/m1          continue a killed or stopped run
    malot eval report runs/m1            Markdown + JSON + PNG plots under runs/m1/report
    malot eval compare runs/m1 runs/m2   problems solved by one run and not the other
    """


class _Progress:
    """Rich progress bar for a run: problems done, solved so far, throughput, ETA."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.progress = make_progress() if enabled else None
        self.task: Any = None
        self.solved = 0
        self.finished_now = 0
        self.began = time.perf_counter()

    def start(self, total: int, done: int, solved: int) -> None:
        self.solved = solved
        self.began = time.perf_counter()
        if self.progress is not None:
            self.progress.start()
            self.task = self.progress.add_task("problems", total=total, completed=done, status=self._status(done))

    def problem_finished(self, row: ProblemRow) -> None:
        self.finished_now += 1
        self.solved += int(row.solved)
        if self.progress is not None and self.task is not None:
            self.progress.advance(self.task)
            done = int(self.progress.tasks[0].completed)
            self.progress.update(self.task, status=self._status(done))

    def _status(self, done: int) -> str:
        elapsed = max(time.perf_counter() - self.began, 1e-9)
        rate = self.finished_now / elapsed * 60
        return f"solved {self.solved}/{done} · {rate:.1f}/min"

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()


@command.command("run")
@click.argument("dataset", required=False)
@click.option("--model", "-m", help="Model: a local folder / hub id, http(s)://host:port/v1#name, or script:FILE.")
@click.option("--llm-backend", type=click.Choice(["auto", "vllm", "hf", "openai", "script"]), help="LLM backend.")
@click.option("--strategy", type=click.Choice(strategy_names()), help="Proving strategy.")
@click.option(
    "--samples", "-n", type=click.IntRange(min=1, max=1024), help="Independent samples per problem (pass@k up to n)."
)
@click.option("--rounds", type=click.IntRange(min=0), help="Correction rounds per sample (MA-LoT).")
@click.option("--repair", is_flag=True, default=None, help="Repair failed proofs by lemmas (whole-proof, MA-LoT).")
@click.option(
    "--answer-mode",
    type=click.Choice(["given", "produced"]),
    help="PutnamBench: the published answer given, or produced by the prover (default given).",
)
@click.option("--temperature", type=click.FloatRange(min=0.0), help="Sampling temperature.")
@click.option("--max-tokens", type=click.IntRange(min=1), help="Maximum tokens per generation.")
@click.option("--tokens", "budget_tokens", type=click.IntRange(min=1), help="Token budget per problem.")
@click.option("--lean-seconds", type=click.FloatRange(min=0, min_open=True), help="Lean CPU-seconds per problem.")
@click.option("--wall-seconds", type=click.FloatRange(min=0, min_open=True), help="Wall-time budget per problem.")
@click.option("--first-success", is_flag=True, help="Stop a problem's samples at the first proof (pass@k<n: bound).")
@click.option("--split", help="Keep one split (test, valid, train).")
@click.option("--filter", "name_filters", multiple=True, metavar="GLOB", help="Keep problems whose name matches.")
@click.option("--category", "categories", multiple=True, help="Keep a category (aime, amc, imo, mathd-algebra, ...).")
@click.option("--count", type=click.IntRange(min=1), help="Keep the first N problems after the other filters.")
@click.option("--defects", type=click.Path(exists=True, dir_okay=False), help="Known-defective statements list.")
@click.option("--skip-defective", is_flag=True, help="Leave the known-defective statements out of the run.")
@click.option("--leandojo-source", type=click.Path(exists=True, file_okay=False), help="Traced repo (LeanDojo).")
@click.option("--lean", "lean_path", type=click.Path(dir_okay=False), help="The lean executable.")
@click.option("--project", type=click.Path(file_okay=False), help="Lean project (Mathlib) to check proofs in.")
@click.option("--kimina", "kimina_url", help="URL of a Kimina Lean Server to check proofs with.")
@click.option("--lean-backend", type=click.Choice(["auto", "repl", "file", "kimina"]), help="Verifier backend.")
@click.option("--lean-pool", type=click.IntRange(min=1), help="Lean processes.")
@click.option("--lean-timeout", type=click.FloatRange(min=0, min_open=True), help="Seconds per Lean check.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), help="Problems in flight at once (default: LLM slots).")
@click.option("--llm-slots", type=click.IntRange(min=1), help="Concurrent LLM steps (executor limit).")
@click.option("--lean-slots", type=click.IntRange(min=1), help="Concurrent Lean checks (executor limit).")
@click.option("--out", "-o", type=click.Path(file_okay=False), help="Run folder (default: <output.dir>/<name>).")
@click.option("--run-id", help="Run id shown in reports (default: the folder name).")
@click.option("--resume", type=click.Path(file_okay=False), metavar="RUN", help="Continue the run in folder RUN.")
@click.option(
    "--retry-errors/--keep-errors",
    default=None,
    help="With --resume: run again the problems that ended in an error (default), or keep them as they are.",
)
@click.option("--ray", "ray_address", metavar="ADDRESS", help="Spread problems over a Ray cluster ('local': new one).")
@click.option("--ray-workers", type=click.IntRange(min=1), help="Ray workers (default: one per cluster node).")
@click.option("--ray-model", "ray_models", multiple=True, help="LLM endpoint per Ray worker (repeat; round-robin).")
@click.option("--ray-jobs", type=click.IntRange(min=1), default=4, show_default=True, help="Problems per worker.")
@click.option("--solver", metavar="MODULE:FACTORY", help="A custom solver factory instead of the provers.")
@click.option("--no-report", is_flag=True, help="Do not write the report when the run finishes.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def run_command(ctx: click.Context, /, dataset: str | None, **opts: Any) -> int:
    """Run an evaluation of DATASET, or continue one with --resume RUN."""
    from malot.eval.datasets import load_dataset
    from malot.eval.report import summarize, write_report
    from malot.eval.runner import EvalRunner, LocalBackend
    from malot.eval.runs import create_run, default_run_dir, resume_settings
    from malot.eval.solver import budget_from_settings, load_solver_factory
    from malot.eval.store import ResultsStore

    overrides = {
        "llm.model": opts["model"],
        "llm.backend": opts["llm_backend"],
        "prover.strategy": opts["strategy"],
        "prover.samples": opts["samples"],
        "prover.rounds": opts["rounds"],
        "decompose.repair": opts["repair"],
        "prover.temperature": opts["temperature"],
        "prover.max_tokens": opts["max_tokens"],
        "budget.tokens": opts["budget_tokens"],
        "budget.lean_cpu_seconds": opts["lean_seconds"],
        "budget.wall_seconds": opts["wall_seconds"],
        "lean.lean_path": opts["lean_path"],
        "lean.project": opts["project"],
        "lean.kimina_url": opts["kimina_url"],
        "lean.backend": opts["lean_backend"],
        "lean.pool_size": opts["lean_pool"],
        "lean.timeout_s": opts["lean_timeout"],
        "executor.llm_slots": opts["llm_slots"],
        "executor.lean_slots": opts["lean_slots"],
    }
    if opts["resume"]:
        if dataset is not None:
            raise click.UsageError("give either DATASET (a new run) or --resume RUN, not both")
        selection = (
            "split",
            "name_filters",
            "categories",
            "count",
            "defects",
            "skip_defective",
            "out",
            "solver",
            "answer_mode",
        )
        given = [name for name in selection if opts[name]]
        if given:
            raise click.UsageError(f"--resume keeps the run's dataset selection; drop {', '.join(given)}")
        store = ResultsStore.open(opts["resume"])
        load_cli_settings(ctx, {})  # validates --config / environment even though the run's settings are used
        settings = resume_settings(store, overrides)
        if opts["retry_errors"] is not False:
            reopened = store.reopen_errors()
            if reopened:
                err_console.print(f"retrying {reopened} problem(s) that ended in an error (--keep-errors: do not)")
        meta = store.run_info()["meta"]
        solver_spec = meta.get("solver")
        first_success = bool(meta.get("first_success", False))
    else:
        if dataset is None:
            raise click.UsageError("give a DATASET (minif2f or a file/folder) or --resume RUN")
        if opts["retry_errors"] is not None:
            raise click.UsageError("--retry-errors/--keep-errors only apply with --resume")
        settings = load_cli_settings(ctx, overrides)
        if opts["answer_mode"]:
            if dataset.lower().split(":", 1)[0] != "putnambench" or ":" in dataset:
                raise click.UsageError("--answer-mode applies to the dataset putnambench (or write putnambench:MODE)")
            dataset = f"{dataset}:{opts['answer_mode']}"
        data = load_dataset(dataset, defects=opts["defects"], leandojo_source=opts["leandojo_source"]).select(
            split=opts["split"],
            names=opts["name_filters"],
            categories=opts["categories"],
            count=opts["count"],
            skip_defective=opts["skip_defective"],
        )
        if opts["solver"] is None:  # the provers check in Lean: the dataset's pinned project, or a clear mismatch
            from malot.lean.projects import project_for_dataset

            pinned = project_for_dataset(data.name, data.toolchain, settings)
            if pinned is not None:
                settings = settings.model_copy(update={"lean": settings.lean.model_copy(update={"project": pinned})})
        solver_spec = opts["solver"]
        first_success = opts["first_success"]
        load_solver_factory(solver_spec)  # fail before creating the run folder
        out = Path(opts["out"]) if opts["out"] else default_run_dir(settings, data.name, settings.prover.strategy)
        store = create_run(
            data,
            settings,
            out,
            run_id=opts["run_id"],
            solver=solver_spec,
            first_success=first_success,
            backend="ray" if opts["ray_address"] else "local",
        )
    factory = load_solver_factory(solver_spec)
    budget = budget_from_settings(settings, first_success=first_success)
    backend: Any
    if opts["ray_address"]:
        from malot.eval.ray_backend import RayBackend

        backend = RayBackend(
            opts["ray_address"],
            solver=solver_spec,
            workers=opts["ray_workers"],
            worker_models=list(opts["ray_models"]),
            jobs_per_worker=opts["ray_jobs"],
        )
    elif opts["ray_models"] or opts["ray_workers"]:
        raise click.UsageError("--ray-workers / --ray-model need --ray ADDRESS")
    else:
        backend = LocalBackend(factory, jobs=opts["jobs"])
    progress = _Progress(enabled=not opts["no_progress"] and not opts["as_json"])
    runner = EvalRunner(store, settings, backend, listener=progress, budget=budget)
    err_console.print(f"run folder: {store.run_dir}", soft_wrap=True)
    try:
        summary = asyncio.run(runner.run())
    except (KeyboardInterrupt, MalotError):
        progress.stop()
        err_console.print(
            f"the run stopped; what is committed is kept: continue with malot eval --resume {store.run_dir}",
            soft_wrap=True,
        )
        raise
    finally:
        progress.stop()
    report_paths: dict[str, str] = {}
    if not opts["no_report"]:
        report_paths = {k: str(v) for k, v in write_report(store).items()}
    stats = summarize(store)
    result = {
        "run_dir": summary.run_dir,
        "session": summary.session,
        "problems": summary.total,
        "done": summary.done,
        "solved": summary.solved,
        "finished_this_session": summary.finished_now,
        "errored_this_session": summary.errored,
        "errors": list(summary.errors),
        "pass_at_k": stats["pass_at_k"],
        "wall_s": round(summary.wall_s, 3),
        "report": report_paths,
    }
    store.close()
    if opts["as_json"]:
        echo_json(result)
    else:
        curve = ", ".join(f"pass@{k} {100 * v:.1f}%" for k, v in list(stats["pass_at_k"].items())[:4])
        click.echo(
            f"{summary.solved}/{summary.total} solved ({summary.done} done"
            + (f", {summary.errored} of them not attempted: errors" if summary.errored else "")
            + f") in {summary.wall_s:.1f}s; {curve}"
            + (f"; report: {report_paths.get('markdown')}" if report_paths else "")
        )
    return _report_errors(summary, store.run_dir)


def _report_errors(summary: Any, run_dir: Path) -> int:
    """Say on stderr which problems could not be attempted (errors, not failed proofs); exit 2 if none could be."""
    if not summary.errored:
        return 0
    err_console.print(
        f"[bold red]{summary.errored} of {summary.finished_now} problem(s) could not be attempted[/] (an error, "
        "not a failed proof; they are not counted as attempted and 'malot eval --resume' retries them):",
        soft_wrap=True,
    )
    for error in summary.errors:
        err_console.print(f"  {error}", markup=False, highlight=False, soft_wrap=True)
    if summary.nothing_attempted:
        err_console.print(
            f"no problem could be attempted: fix the cause ('malot doctor'), then: malot eval --resume {run_dir}",
            soft_wrap=True,
            highlight=False,
        )
        return 2
    return 0


@command.command("report")
@click.argument("run", type=click.Path(file_okay=False))
@click.option("--out", "-o", type=click.Path(file_okay=False), help="Report folder (default: RUN/report).")
@click.option("--no-plots", is_flag=True, help="Skip the PNG plots.")
@click.option("--json", "as_json", is_flag=True, help="Print the report summary as JSON.")
def report_command(run: str, out: str | None, no_plots: bool, as_json: bool) -> int:
    """Write RUN's report: Markdown, JSON and PNG plots (pass@k, solved by category, verification time)."""
    from malot.eval.report import summarize, write_report
    from malot.eval.store import ResultsStore

    with ResultsStore.open(run) as store:
        paths = write_report(store, out, plots=not no_plots)
        summary = summarize(store)
    if as_json:
        summary["verification"].pop("times_s", None)
        echo_json({"summary": summary, "files": {k: str(v) for k, v in paths.items()}})
    else:
        for kind, path in paths.items():
            click.echo(f"{kind}: {path}")
    return 0


@command.command("compare")
@click.argument("run_a", type=click.Path(file_okay=False))
@click.argument("run_b", type=click.Path(file_okay=False))
@click.option("--out", "-o", type=click.Path(file_okay=False), help="Folder for compare.md/json/png (default: RUN_A).")
@click.option("--no-plots", is_flag=True, help="Skip the plot.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def compare_command(run_a: str, run_b: str, out: str | None, no_plots: bool, as_json: bool) -> int:
    """Show the problems solved by RUN_A and not RUN_B and vice versa, with a plot."""
    from malot.eval.report import write_comparison
    from malot.eval.store import ResultsStore

    with ResultsStore.open(run_a) as a, ResultsStore.open(run_b) as b:
        folder = Path(out) if out else a.run_dir / "report" / f"compare-{b.run_dir.name}"
        data, paths = write_comparison(a, b, folder, plots=not no_plots)
    if as_json:
        echo_json({**data, "files": {k: str(v) for k, v in paths.items()}})
        return 0
    click.echo(f"A {data['a']['run_id']}: solved {data['a']['solved']}/{data['a']['done']}")
    click.echo(f"B {data['b']['run_id']}: solved {data['b']['solved']}/{data['b']['done']}")
    click.echo(f"solved by both: {len(data['solved_by_both'])}")
    click.echo(f"only A ({len(data['only_a'])}): {', '.join(data['only_a']) or '-'}")
    click.echo(f"only B ({len(data['only_b'])}): {', '.join(data['only_b']) or '-'}")
    for kind, path in paths.items():
        click.echo(f"{kind}: {path}")
    return 0
