"""``malot config``: show the effective configuration, validate a file, or write a starting file."""

from __future__ import annotations

from pathlib import Path

import click

from malot.cli.common import console, echo_json, load_cli_settings
from malot.config import Settings, load_settings
from malot.errors import ConfigError


@click.group("config")
def command() -> None:
    """Show, check or write the configuration (TOML file < MALOT_* variables < flags)."""


@command.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of TOML.")
@click.option("--section", help="Only this section (llm, lean, retrieval, prover, budget, executor, output, tools).")
@click.pass_context
def show(ctx: click.Context, as_json: bool, section: str | None) -> None:
    """Print the effective configuration."""
    settings = load_cli_settings(ctx)
    data = settings.model_dump(mode="json")
    if section is not None:
        if section not in data:
            raise ConfigError(f"no config section {section!r}; sections: {', '.join(data)}")
        data = {section: data[section]}
    if as_json:
        echo_json(data)
        return
    text = Settings.model_validate(settings.model_dump()).to_toml() if section is None else _section_toml(data)
    console.print(text, markup=False, highlight=False)


def _section_toml(data: dict[str, object]) -> str:
    from malot.config import _dump_toml

    return _dump_toml({k: v for k, v in data.items()})


@command.command("validate")
@click.argument("file", type=click.Path(dir_okay=False))
def validate(file: str) -> None:
    """Check a TOML configuration file; exit 0 if it is valid."""
    load_settings(file, env={})
    console.print(f"{file}: valid")


@command.command("init")
@click.argument("file", type=click.Path(dir_okay=False), default="malot.toml")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(file: str, force: bool) -> None:
    """Write the default configuration to FILE (default: ./malot.toml)."""
    path = Path(file)
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists", hint="pass --force to overwrite it")
    path.write_text(Settings().to_toml(), encoding="utf-8")
    console.print(f"wrote {path}")
