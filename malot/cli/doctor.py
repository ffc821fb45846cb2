"""``malot doctor``: what is installed and usable here, and what to do about what is missing."""

from __future__ import annotations

import click
from rich.markup import escape
from rich.table import Table

from malot.cli.common import console, echo_json, load_cli_settings
from malot.doctor import run_checks

_STYLE = {"ok": "green", "warn": "yellow", "missing": "red", "error": "bold red"}


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def command(ctx: click.Context, as_json: bool) -> None:
    """Report Python packages, GPU, Lean toolchain, Lean project, LLM endpoints and sandboxing."""
    settings = load_cli_settings(ctx)
    checks = run_checks(settings)
    if as_json:
        echo_json([c.to_dict() for c in checks])
        return
    table = Table(title="malot doctor", show_lines=False)
    for column in ("section", "check", "status", "detail"):
        table.add_column(column)
    for c in checks:
        detail = escape(c.detail) + (f"\n[dim]-> {escape(c.hint)}[/dim]" if c.hint and c.status != "ok" else "")
        table.add_row(escape(c.section), escape(c.name), f"[{_STYLE[c.status]}]{c.status}[/]", detail)
    console.print(table)
