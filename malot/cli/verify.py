"""``malot verify``: check a Lean proof with the acceptance rule and print the verdict with every flag.

``malot verify FILE.lean`` checks a whole file (its last theorem, or ``--theorem NAME``);
``malot verify --header H --statement S --proof P`` checks a proof of a given statement (``P`` may be a full
snippet or a proof body; ``-`` reads stdin). ``--screen-only`` runs only the checks that need no Lean. Exit status:
0 accepted, 1 rejected, 2 error. Lean comes from the config, ``MALOT_LEAN``/``--lean``, ``--project`` or
``--kimina``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import click
from rich.markup import escape

from malot.cli.common import console, echo_json, load_cli_settings, read_text_arg, read_text_file


@click.command("verify")
@click.argument("file", required=False, type=click.Path(dir_okay=False, exists=True))
@click.option("--theorem", "theorem", help="In FILE, the theorem to check (default: the last one).")
@click.option("--header", help="Trusted header (imports, options, opens); @FILE reads a file.")
@click.option("--statement", help="The original statement, ending in ':= by' or ':='; @FILE reads a file.")
@click.option("--proof", help="The proof: a full snippet or a proof body; '-' reads stdin, @FILE reads a file.")
@click.option("--screen-only", is_flag=True, help="Only the checks that need no Lean (re-splice, source screen).")
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
@click.option("--lean", "lean_path", help="A lean executable (file backend); also MALOT_LEAN.")
@click.option("--project", type=click.Path(file_okay=False), help="A Lake project (REPL, or lake env lean).")
@click.option("--kimina", "kimina_url", help="URL of a Kimina Lean Server.")
@click.option("--timeout", type=float, help="Seconds per check.")
@click.option("--prewarm", multiple=True, help="Header each REPL elaborates at start (e.g. 'import Mathlib').")
@click.option("--allow-axiom", "allow_axioms", multiple=True, help="Also allow this axiom (repeatable).")
@click.option("--allow-native", is_flag=True, help="Allow native_decide and native-computation axioms.")
@click.option("--lean4checker", is_flag=True, help="Re-check accepted proofs with lean4checker when installed.")
@click.pass_context
def command(
    ctx: click.Context,
    file: str | None,
    theorem: str | None,
    header: str | None,
    statement: str | None,
    proof: str | None,
    screen_only: bool,
    as_json: bool,
    lean_path: str | None,
    project: str | None,
    kimina_url: str | None,
    timeout: float | None,
    prewarm: tuple[str, ...],
    allow_axioms: tuple[str, ...],
    allow_native: bool,
    lean4checker: bool,
) -> int:
    """Check a proof with the acceptance rule; exit 0 accepted, 1 rejected, 2 error."""
    from malot.lean.acceptance import AcceptanceRule, TargetTheorem, screen, split_source, verify_candidate
    from malot.lean.select import describe_choice, load_verifier

    overrides: dict[str, Any] = {
        "lean.lean_path": lean_path,
        "lean.project": project,
        "lean.kimina_url": kimina_url,
        "lean.timeout_s": timeout,
        "lean.prewarm": list(prewarm) or None,
    }
    if lean_path:
        overrides["lean.backend"] = "file"
    settings = load_cli_settings(ctx, overrides)
    base_rule = AcceptanceRule.from_settings(settings.lean)
    rule = base_rule.model_copy(
        update={
            "allowed_axioms": base_rule.allowed_axioms | frozenset(allow_axioms),
            "allow_native": base_rule.allow_native or allow_native,
            "lean4checker": base_rule.lean4checker or lean4checker,
        }
    )
    if file is not None:
        if statement is not None or proof is not None:
            raise click.UsageError("give either FILE or --statement/--proof, not both")
        source = read_text_file(file, "Lean file")
        target, candidate = split_source(source, theorem)
        header_text = read_text_arg(header, "--header")
        if header_text is not None:  # the trusted header replaces whatever the file has before the theorem
            target = target.model_copy(update={"header": header_text, "trusted_header": True})
    else:
        statement_text, proof_text = read_text_arg(statement, "--statement"), read_text_arg(proof, "--proof")
        if statement_text is None or proof_text is None:
            raise click.UsageError("give FILE.lean, or --statement and --proof")
        target = TargetTheorem(header=read_text_arg(header, "--header") or "", statement=statement_text)
        candidate = proof_text

    if screen_only:
        screened = screen(target, candidate, rule)
        if as_json:
            echo_json({"target": target.name, "accepted_by_screen": screened.ok, **screened.to_dict()})
        else:
            verdict = "[green]passes the screen[/]" if screened.ok else "[red]rejected by the screen[/]"
            console.print(f"{escape(target.name)}: {verdict}")
            for reason in screened.reasons:
                console.print(f"  - {escape(reason)}", highlight=False)
        return 0 if screened.ok else 1

    verifier = load_verifier(settings.lean)

    async def run() -> Any:
        async with verifier:
            return await verify_candidate(verifier, target, candidate, rule, settings.lean.timeout_s)

    result = asyncio.run(run())
    if as_json:
        data = result.model_dump(mode="json", by_alias=False)
        data["flags"] = result.flags()
        data["reasons"] = result.reasons()
        data["backend_choice"] = describe_choice(settings.lean)
        echo_json(data)
    else:
        verdict = "[bold green]accepted[/]" if result.accepted else "[bold red]rejected[/]"
        console.print(f"{target.name}: {verdict}  ({result.backend}, {result.time_s:.2f}s, status {result.status})")
        console.print(
            f"  decided by {result.decided_by or 'n/a'}; final check {result.final_check or 'not run'}; "
            f"isolation {result.isolation or 'n/a'}",
            highlight=False,
        )
        for name, value in result.flags().items():
            mark = {True: "[green]yes[/]", False: "[red]no[/]", None: "[dim]n/a[/]"}[value]
            console.print(f"  {name:<22} {mark}")
        if result.axioms is not None:
            console.print(f"  axioms: {', '.join(result.axioms) or '(none)'}", highlight=False)
        for reason in result.reasons():
            console.print(f"  - {escape(reason)}", highlight=False)
    return 0 if result.accepted else 1
