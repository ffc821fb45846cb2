"""Helpers every subcommand shares: loading settings, printing JSON or rich tables, progress bars."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from malot.config import Settings, load_settings

__all__ = ["console", "echo_json", "err_console", "load_cli_settings", "make_progress"]

console = Console()
err_console = Console(stderr=True)


def load_cli_settings(ctx: click.Context, overrides: Mapping[str, Any] | None = None) -> Settings:
    """Settings for a subcommand: the root ``--config`` file, environment, then this command's flags."""
    root = ctx.find_root()
    path = (root.obj or {}).get("config_path") if root.obj else None
    return load_settings(path, overrides=overrides)


def echo_json(data: Any) -> None:
    """Print one JSON document on stdout (for ``--json`` output)."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def make_progress(*, transient: bool = False) -> Progress:
    """A rich progress bar with count, rate-friendly elapsed time and ETA, drawn on stderr."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=transient,
    )
