"""``malot prove``: prove one Lean 4 theorem with MA-LoT or the whole-proof baseline.

The theorem comes from the command line (``malot prove "theorem foo ... := by"``), stdin (``-`` or a pipe), a file
(``--file F.lean --theorem NAME``) or a dataset (``--problem minif2f:NAME``). Live progress (attempts, rounds,
verifier verdicts) goes to stderr; the verified proof to stdout. The proof, the result and the trace are written
to ``--out DIR`` (default: ``<output.dir>/prove/<name>-<time>``). Exit code 0 proved, 1 not proved, 2 error.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from malot.cli.common import check_text, console, echo_json, err_console, load_cli_settings, read_text_arg
from malot.errors import ConfigError
from malot.provers.decoding import (
    DecodingContext,
    DecodingSession,
    add_hook_options,
    decoding_hook_statuses,
    start_decoding_runs,
)
from malot.provers.registry import strategy_names

__all__ = ["MAX_SAMPLES", "command"]

#: The most samples one ``malot prove`` may ask for (as the HTTP API's limit).
MAX_SAMPLES = 1024


@click.command("prove")
@click.argument("statement", required=False)
@click.option("--file", "lean_file", type=click.Path(dir_okay=False), help="A .lean file holding the theorem.")
@click.option("--theorem", "theorem", help="With --file: the name of the theorem to prove.")
@click.option("--problem", "problem_spec", help="A dataset problem, e.g. minif2f:mathd_algebra_10.")
@click.option("--informal", help="The natural-language statement (shown to the model).")
@click.option("--strategy", type=click.Choice(strategy_names()), help="Proving strategy (default ma-lot).")
@click.option("--model", help="Model: hub id, local folder, http(s)://host:port/v1#name, or script:FILE.")
@click.option("--preset", help="A model preset (model + template + sampling), e.g. goedel-prover-v2-8b.")
@click.option(
    "--backend",
    type=click.Choice(["auto", "vllm", "hf", "openai", "script"]),
    help="How to run a local model (default: llm.backend from config).",
)
@click.option("--template", help="Prompt template name or TOML file (default: the model's preset).")
@click.option("--samples", type=click.IntRange(min=1, max=MAX_SAMPLES), help="Initial samples (attempts); default 4.")
@click.option("--rounds", type=click.IntRange(min=0), help="Chained correction rounds per sample (MA-LoT); default 2.")
@click.option("--repair", is_flag=True, default=None, help="Repair failed proofs by lemmas (whole-proof, MA-LoT).")
@click.option("--retriever", type=click.Choice(["none", "random", "bm25", "dense", "hybrid", "udr"]))
@click.option("--lean", "lean_path", help="The lean executable to check proofs with (file backend).")
@click.option("--project", type=click.Path(file_okay=False), help="A Lake project (REPL pool, or lake env lean).")
@click.option("--kimina", "kimina_url", help="URL of a Kimina Lean Server.")
@click.option("--seed", type=int, help="Sampling seed.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Folder for proof.lean, result.json, trace.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (no progress display).")
@click.pass_context
def command(
    ctx: click.Context,
    /,
    statement: str | None,
    lean_file: str | None,
    theorem: str | None,
    problem_spec: str | None,
    informal: str | None,
    strategy: str | None,
    model: str | None,
    preset: str | None,
    template: str | None,
    samples: int | None,
    rounds: int | None,
    retriever: str | None,
    lean_path: str | None,
    seed: int | None,
    out_dir: str | None,
    as_json: bool,
    project: str | None = None,
    kimina_url: str | None = None,
    repair: bool | None = None,
    backend: str | None = None,
    **hook_values: Any,
) -> int:
    """Prove a Lean 4 theorem given as STATEMENT, on stdin, with --file/--theorem, or with --problem."""
    from malot.provers import Problem, Prover, load_problem

    settings = load_cli_settings(
        ctx,
        {
            "llm.model": model,
            "llm.backend": backend,
            "prover.strategy": strategy,
            "prover.preset": preset,
            "prover.template": template,
            "prover.samples": samples,
            "prover.rounds": rounds,
            "decompose.repair": repair,
            "prover.seed": seed,
            "retrieval.retriever": retriever,
            "lean.lean_path": lean_path,
            "lean.project": project,
            "lean.kimina_url": kimina_url,
            **({"lean.backend": "file"} if lean_path else {}),
        },
    )
    problem = _read_problem(statement, lean_file, theorem, problem_spec, informal, Problem, load_problem)
    settings = _dataset_project(problem_spec, settings)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(out_dir) if out_dir else settings.output.dir / "prove" / f"{problem.name}-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    trace = out / "trace.jsonl" if settings.output.trace else None
    progress = None if as_json else _LiveProgress(settings.prover.samples if samples is None else samples)

    import asyncio

    group_id = f"{problem.name}-{stamp}"
    for status in decoding_hook_statuses():
        if status.state == "failed":  # reported, not fatal: the other hooks and the proof go on
            err_console.print(f"warning: decoding plugin {status.name} did not load: {status.error}", markup=False)
    runs = start_decoding_runs(hook_values, DecodingContext(settings, trace, group_id))  # plugins' decoding hooks

    async def run() -> Any:
        on_event = progress.on_event if progress is not None else None
        async with (
            DecodingSession(runs, settings) as decoding,
            Prover(settings, llm=decoding.llm, trace=trace, on_event=on_event) as prover,
        ):
            if progress is not None:
                progress.start(problem.name)
            try:
                return await prover.prove(problem, group_id=group_id)
            finally:
                if progress is not None:
                    progress.stop()

    result = asyncio.run(run())
    (out / "result.json").write_text(result.model_dump_json(indent=2) + "\n", encoding="utf-8")
    if result.proof is not None:
        (out / "proof.lean").write_text(result.proof.rstrip() + "\n", encoding="utf-8")
    if as_json:
        echo_json({**result.model_dump(mode="json"), "out_dir": str(out)})
        return int(result.exit_code)
    summary = result.summary
    if result.proved:
        err_console.print(
            f"[bold green]proved[/] {result.problem} (round {result.proof_round}, {result.lean_checks} Lean checks, "
            f"{result.wall_s:.1f}s)"
        )
        console.print(result.proof or "", markup=False, highlight=False, soft_wrap=True)
        err_console.print(f"proof written to {out / 'proof.lean'}", highlight=False)
    else:
        why = f"; stopped: {result.stopped}" if result.stopped else ""
        err_console.print(
            f"[bold red]not proved[/] {result.problem}: {len(result.attempts)} attempts, "
            f"{summary.get('candidates', 0)} candidates, {result.lean_checks} Lean checks{why}"
        )
        for attempt in result.attempts:
            if attempt.last_error:
                err_console.print(f"  attempt {attempt.index}: {attempt.last_error}", markup=False, highlight=False)
    err_console.print(
        f"trace: {trace if trace else '(off)'}; framework overhead "
        f"{summary.get('mean_framework_overhead_ms_per_attempt', 0.0):.2f} ms/attempt",
        highlight=False,
    )
    return int(result.exit_code)


add_hook_options(command)  # options of the installed decoding plugins (the ``malot.decoding`` entry points)


def _dataset_project(problem_spec: str | None, settings: Any) -> Any:
    """A dataset problem (``minif2f:``, ``putnambench:``) is checked in its dataset's pinned Lean project; a
    configured project or lean of another version is refused (:func:`malot.lean.projects.project_for_dataset`)."""
    if not problem_spec or ":" not in problem_spec:
        return settings
    from malot.lean.projects import PINNED_PROJECTS, project_for_dataset

    family = problem_spec.split(":", 1)[0].removesuffix("-produced")
    pinned = PINNED_PROJECTS.get(family)
    if pinned is None:
        return settings
    project = project_for_dataset(family, pinned.toolchain, settings)
    if project is None:
        return settings
    return settings.model_copy(update={"lean": settings.lean.model_copy(update={"project": project})})


def _read_problem(
    statement: str | None,
    lean_file: str | None,
    theorem: str | None,
    problem_spec: str | None,
    informal: str | None,
    problem_cls: Any,
    load_problem: Any,
) -> Any:
    given = [x for x in (statement, lean_file, problem_spec) if x is not None]
    if len(given) > 1:
        raise click.UsageError("give one of STATEMENT, --file or --problem")
    if lean_file is not None:
        if not theorem:
            raise click.UsageError("--file needs --theorem NAME")
        return problem_cls.from_lean_file(lean_file, theorem, informal=informal)
    if theorem is not None:
        raise click.UsageError("--theorem goes with --file")
    if problem_spec is not None:
        if ":" not in problem_spec:
            raise ConfigError(f"--problem {problem_spec!r} names no dataset", hint="write it as minif2f:NAME")
        problem = load_problem(problem_spec)
        return problem.model_copy(update={"informal": informal}) if informal else problem
    if statement is None or statement == "-":
        if sys.stdin.isatty() and statement is None:
            raise click.UsageError("give a STATEMENT, '-' to read stdin, --file F.lean --theorem NAME, or --problem")
        statement = read_text_arg("-", "the statement") or ""
    check_text(statement, "the statement")
    if not statement.strip():
        raise click.UsageError("the statement is empty")
    return problem_cls.from_statement(statement, informal=informal)


class _LiveProgress:
    """A rich progress bar on stderr fed by trace events: attempts done, current round, verdicts so far."""

    def __init__(self, samples: int) -> None:
        from malot.cli.common import make_progress

        self.samples = samples
        self.progress = make_progress(transient=False)
        self.task: Any = None
        self.verified = 0
        self.failed = 0
        self.no_code = 0
        self.round = 0
        self.done = 0
        self.search: dict[str, dict[str, Any]] = {}

    def start(self, name: str) -> None:
        """Show the bar."""
        self.task = self.progress.add_task(f"proving {name}", total=self.samples, status="starting")
        self.progress.start()

    def stop(self) -> None:
        """Hide the bar's live refresh (the final state stays printed)."""
        self.progress.stop()

    def search_status(self) -> str:
        """Tactic-search progress over the attempts: expansions, open states, best score."""
        runs = self.search.values()
        scores = [float(p["best_score"]) for p in runs if p.get("best_score") is not None]
        best = f" · best {max(scores):.2f}" if scores else ""
        expansions = sum(int(p.get("expansions", 0)) for p in runs)
        return f"expansions {expansions} · open {sum(int(p.get('open', 0)) for p in runs)}{best}"

    def on_event(self, event: dict[str, Any]) -> None:
        """Update counters from one trace event."""
        if self.task is None:
            return
        kind = event.get("type")
        search = event.get("data", {}).get("search") if kind == "note" else None
        if isinstance(search, dict) and "attempt_id" in event.get("data", {}):
            self.search[str(event["data"]["attempt_id"])] = search  # live tactic-search progress
        if kind == "step":
            for note in event.get("notes", []):
                if "round" in note:
                    self.round = max(self.round, int(note["round"]))
                verdict = note.get("verdict")
                if verdict == "verified":
                    self.verified += 1
                elif verdict == "failed":
                    self.failed += 1
                    if not note.get("lean_called", True) and not note.get("cached"):
                        self.no_code += 1
        elif kind == "attempt_finished":
            self.done += 1
            self.progress.update(self.task, completed=self.done)
        status = f"round {self.round} · verified {self.verified} · failed {self.failed}" + (
            f" (no Lean call {self.no_code})" if self.no_code else ""
        )
        if self.search:
            status = f"{self.search_status()} · verified {self.verified} · failed {self.failed}"
        self.progress.update(self.task, status=status)
