"""``malot agent run``: a tool-calling agent (:class:`malot.agents.ToolAgent`) on one task, with live progress."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import click
from rich.markup import escape

from malot.cli.common import echo_json, err_console, load_cli_settings
from malot.errors import ConfigError


@click.group("agent")
def command() -> None:
    """Tool-calling agents: a model calls registered tools and MCP servers' tools until it answers."""


@command.command("run")
@click.argument("task")
@click.option("--tools", "tools", default=None, help="Comma-separated tool names (default: every registered tool).")
@click.option("--model", default=None, help="Model string (default: llm.model), e.g. script:FILE or http://h:p/v1#m.")
@click.option("--system", default=None, help="System prompt.")
@click.option("--max-steps", type=int, default=8, show_default=True, help="Most model turns.")
@click.option("--max-tool-calls", type=int, default=None, help="Most tool calls in the run.")
@click.option("--tool-timeout", type=float, default=600.0, show_default=True, help="Seconds per tool call.")
@click.option("--tool-choice", default="auto", show_default=True, help="auto, required, none or a tool name.")
@click.option("--max-tokens", type=int, default=1024, show_default=True, help="Tokens per model turn.")
@click.option("--no-mcp", is_flag=True, help="Do not connect to the MCP servers of [tools.mcp].")
@click.option("--json", "as_json", is_flag=True, help="Print the result (answer, calls, usage) as JSON.")
@click.pass_context
def run_command(
    ctx: click.Context,
    task: str,
    tools: str | None,
    model: str | None,
    system: str | None,
    max_steps: int,
    max_tool_calls: int | None,
    tool_timeout: float,
    tool_choice: str,
    max_tokens: int,
    no_mcp: bool,
    as_json: bool,
) -> None:
    """Run TASK: the model may call the tools; each call is shown as it happens; the answer is printed."""
    if max_steps < 1:
        raise ConfigError(f"--max-steps must be at least 1, got {max_steps}")
    settings = load_cli_settings(ctx, {"llm.model": model} if model else None)
    names = [n.strip() for n in tools.split(",") if n.strip()] if tools else None
    result = asyncio.run(
        _run(
            settings,
            task,
            names,
            system=system,
            max_steps=max_steps,
            max_tool_calls=max_tool_calls,
            tool_timeout=tool_timeout,
            tool_choice=tool_choice,
            max_tokens=max_tokens,
            mcp=not no_mcp,
            quiet=as_json,
        )
    )
    if as_json:
        echo_json(result.model_dump(mode="json", exclude={"messages"}))
    else:
        click.echo(result.answer)
        if not result.answered:
            err_console.print(
                f"[yellow]stopped: {escape(result.status)} ({escape(str(result.reason or result.error))})[/]"
            )
    if not result.answered:
        ctx.exit(1)


async def _run(
    settings: Any,
    task: str,
    names: list[str] | None,
    *,
    system: str | None,
    max_steps: int,
    max_tool_calls: int | None,
    tool_timeout: float,
    tool_choice: str,
    max_tokens: int,
    mcp: bool,
    quiet: bool,
) -> Any:
    from malot.agents import ToolAgent
    from malot.llm import SamplingParams, load_llm
    from malot.tools import RegistrySource, get_registry
    from malot.tools.mcp_client import mcp_sources

    registry = get_registry(settings)
    local_names = [n for n in names if n in registry] if names is not None else None
    sources: list[Any] = [RegistrySource(registry, names=local_names)]
    async with contextlib.AsyncExitStack() as stack:
        if mcp and settings.tools.mcp:
            for source in mcp_sources(settings.tools.mcp):
                sources.append(await stack.enter_async_context(source))
        llm = await stack.enter_async_context(load_llm(settings.llm))
        agent = ToolAgent(
            llm,
            sources,
            only=names,
            system=system,
            max_steps=max_steps,
            max_tool_calls=max_tool_calls,
            tool_timeout=tool_timeout,
            tool_choice=tool_choice,
            sampling=SamplingParams(temperature=settings.prover.temperature, max_tokens=max_tokens),
        )
        return await agent.run(task, progress=None if quiet else _show)


def _show(kind: str, data: dict[str, Any]) -> None:
    """Live progress on stderr: each turn and each tool call as it starts and ends."""
    if kind == "turn":
        calls = ", ".join(data["tool_calls"]) or "answer"
        err_console.print(f"[dim]turn {data['turn']}:[/] {escape(calls)}")
    elif kind == "call_started":
        err_console.print(f"  [cyan]→ {escape(data['tool'])}[/]({escape(data['arguments'][:160])})")
    elif kind == "call_finished":
        took = f"{data['duration_s']:.2f} s"
        if data.get("error"):
            err_console.print(f"  [red]✗ {escape(data['tool'])}[/] {took}: {escape(str(data['error'])[:300])}")
        else:
            err_console.print(f"  [green]✓ {escape(data['tool'])}[/] {took}, {data['result_chars']} chars")
