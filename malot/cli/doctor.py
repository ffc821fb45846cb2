"""``malot doctor``: what is installed and usable here, and what to do about what is missing."""

from __future__ import annotations

import click
from rich.markup import escape
from rich.table import Table

from malot.cli.common import console, echo_json, load_cli_settings
from malot.config import Settings
from malot.doctor import Check, run_checks
from malot.errors import ConfigError

_STYLE = {"ok": "green", "warn": "yellow", "missing": "red", "error": "bold red"}


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def command(ctx: click.Context, as_json: bool) -> None:
    """Report Python packages, GPU, Lean toolchain, Lean project, LLM endpoints and sandboxing."""
    try:
        settings = load_cli_settings(ctx)
        config_checks: list[Check] = []
    except ConfigError as exc:  # a broken malot.toml or MALOT_* variable is a finding, not a reason to stop
        settings = Settings()
        config_checks = [
            Check("config", "configuration", "error", exc.message, exc.hint or "fix it ('malot config validate')"),
            Check("config", "settings used below", "warn", "built-in defaults (the configuration above is broken)"),
        ]
    checks = [*config_checks, *run_checks(settings)]
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
