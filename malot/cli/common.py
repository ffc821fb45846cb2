"""Helpers every subcommand shares: loading settings, printing JSON or rich tables, progress bars."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
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
from malot.errors import ConfigError

__all__ = [
    "check_text",
    "console",
    "echo_json",
    "err_console",
    "load_cli_settings",
    "make_progress",
    "read_text_arg",
    "read_text_file",
]

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


def check_text(value: str, what: str) -> str:
    """``value`` if it is valid Unicode text; bytes that are not UTF-8 (lone surrogates in ``argv``) are an error."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConfigError(
            f"{what} is not valid UTF-8 text (undecodable byte at position {exc.start})",
            hint="Lean source is UTF-8 text",
        ) from None
    return value


def read_text_file(path: str | Path, what: str) -> str:
    """The UTF-8 text of ``path``; a missing or non-UTF-8 file is one clear error (exit 2), not a traceback."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {p}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{what} {p} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            hint="save it as UTF-8 (Lean source is UTF-8 text)",
        ) from None


def read_text_arg(value: str | None, what: str) -> str | None:
    """A text option: ``-`` reads stdin, ``@FILE`` reads a file, anything else is the text itself (all UTF-8)."""
    if value is None:
        return None
    if value == "-":
        try:
            return check_text(sys.stdin.read(), f"{what} (stdin)")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{what} on stdin is not UTF-8 text: {exc.reason}", hint="pipe UTF-8 text") from None
    if value.startswith("@"):
        return read_text_file(check_text(value[1:], what), what)
    return check_text(value, what)
