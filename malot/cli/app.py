"""The root ``malot`` command: global options, lazy subcommands, and one-line errors.

Subcommands live in their own modules and are imported only when used, so ``malot --help`` stays fast and a
missing optional dependency only affects the command that needs it. To add a subcommand, write a module that
defines a click command or group named ``command`` and list it in :data:`SUBCOMMANDS`.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from malot._version import __version__
from malot.errors import MalotError

__all__ = ["SUBCOMMANDS", "cli", "main"]

#: name -> (module, one-line help). The module must define ``command``.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "config": ("malot.cli.config", "Show, check or write the configuration."),
    "doctor": ("malot.cli.doctor", "Report what is installed and usable on this machine."),
    "prove": ("malot.cli.prove", "Prove a Lean 4 theorem with MA-LoT or the whole-proof baseline."),
    "eval": ("malot.cli.eval", "Evaluate a prover on MiniF2F or another benchmark; resume, report, compare runs."),
    "retrieval": ("malot.cli.retrieval", "Demonstration retrieval: train UDR, build indexes, query them."),
    "tools": ("malot.cli.tools", "List, show and run tools from plugins (model merging, ...)."),
    "verify": ("malot.cli.verify", "Check Lean proofs with the acceptance rule."),
    "serve": ("malot.cli.serve", "Serve the HTTP API: proving jobs with streaming, and proof verification."),
    "llm": ("malot.cli.llm", "Generate, score or show capabilities with an LLM backend (vLLM, HTTP, hf, script)."),
    "dev": ("malot.cli.dev", "Developer utilities: build tiny offline test models."),
    "trace": ("malot.cli.trace", "Show a trace file: attempts, steps and tactic-search trees."),
    "agent": ("malot.cli.agent", "Run a tool-calling agent on a task (plugin tools, malot's tools, MCP servers)."),
    "mcp": ("malot.cli.mcp", "Serve verify, prove and every tool over MCP (stdio or streamable HTTP)."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = SUBCOMMANDS.get(cmd_name)
        if entry is None:
            return None
        module = importlib.import_module(entry[0])
        command: click.Command = module.command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SUBCOMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in SUBCOMMANDS:
            import difflib

            close = difflib.get_close_matches(name, list(SUBCOMMANDS), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; commands: {', '.join(sorted(SUBCOMMANDS))}"
            raise click.UsageError(f"no such command {name!r}{hint}", ctx)
        return super().resolve_command(ctx, args)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, "--version", "-V", prog_name="malot")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="MALOT_CONFIG",
    help="TOML configuration file (default: ./malot.toml if present).",
)
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """malot: multi-agent formal theorem proving in Lean 4 with LLM agents (MA-LoT)."""
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``malot`` script: run the CLI and turn errors into one line and an exit code."""
    args = sys.argv[1:] if argv is None else argv
    try:
        result: Any = cli.main(args=args, prog_name="malot", standalone_mode=False)
    except click.exceptions.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx is not None else "malot"
        click.echo(f"error: {exc.format_message()} (see '{command} --help')", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        return 130
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        return exc.exit_code
    except MalotError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        return 130
    except BrokenPipeError:
        return 0
    if isinstance(result, int):
        return result
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
