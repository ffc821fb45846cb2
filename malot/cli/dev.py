"""``malot dev``: developer utilities (tiny offline test models)."""

from __future__ import annotations

from pathlib import Path

import click

from malot.cli.common import console, echo_json


@click.group("dev")
def command() -> None:
    """Developer utilities."""


@command.command("make-tiny-model")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the tokenizer corpus and weights.")
@click.option("--json", "as_json", is_flag=True, help="Print the model folders as JSON.")
def make_tiny_model(directory: Path, seed: int, as_json: bool) -> None:
    """Build tiny random-weight Llama and CodeGen models (offline, deterministic) under DIRECTORY/llama and
    DIRECTORY/codegen, for tests and trying the backends without downloads."""
    from malot.testing.tiny_models import build_tiny_models

    folders = build_tiny_models(directory, seed=seed)
    if as_json:
        echo_json({kind: str(path) for kind, path in folders.items()})
        return
    for kind, path in folders.items():
        console.print(f"{kind}: {path}", markup=False, highlight=False)
