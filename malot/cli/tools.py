"""``malot tools``: list the tools of installed plugins, show one's schema, run one with JSON arguments."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

import click
from rich.markup import escape
from rich.table import Table

from malot.cli.common import console, echo_json, err_console, load_cli_settings
from malot.errors import ToolError
from malot.tools import Isolation, get_registry, load_plugins

_ISOLATIONS: tuple[str, ...] = get_args(Isolation)


@click.group("tools")
def command() -> None:
    """Tools from plugins (entry-point group 'malot.tools'): list, show, run."""


@command.command("list")
@click.option("--family", default=None, help="Only tools of this family (e.g. weights).")
@click.option("--json", "as_json", is_flag=True, help="Print tools and plugin statuses as JSON.")
@click.pass_context
def list_command(ctx: click.Context, family: str | None, as_json: bool) -> None:
    """List the available tools and the plugins they come from."""
    settings = load_cli_settings(ctx)
    registry = get_registry(settings)
    statuses = load_plugins(settings=settings)
    tools = registry.list(family=family)
    if as_json:
        echo_json(
            {
                "tools": [{"name": t.name, "summary": t.summary, **t.metadata.model_dump(mode="json")} for t in tools],
                "plugins": [s.model_dump(mode="json", exclude={"traceback"}) for s in statuses],
            }
        )
        return
    table = Table(title=f"malot tools ({len(tools)})")
    for column in ("tool", "family", "plugin", "summary"):
        table.add_column(column)
    for t in tools:
        name = t.name + (" [dim](heavy)[/dim]" if t.metadata.heavy else "")
        table.add_row(name, t.metadata.family, t.metadata.plugin, t.summary)
    console.print(table)
    for s in statuses:
        if s.state == "failed":
            err_console.print(
                f"[bold red]plugin {escape(s.name)} ({escape(s.module)}) failed to load:[/] {escape(str(s.error))}"
            )
        elif s.state == "disabled":
            err_console.print(f"[yellow]plugin {s.name} is disabled by the allow-list (MALOT_PLUGINS)[/]")
    if not statuses:
        err_console.print("[yellow]no tool plugins installed[/]; try: pip install -e plugins/weights")


@command.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the description and schemas as JSON.")
@click.option("--openai", "as_openai", is_flag=True, help="Print the OpenAI function-calling schema.")
@click.pass_context
def show_command(ctx: click.Context, name: str, as_json: bool, as_openai: bool) -> None:
    """Show one tool: description, metadata, input and output JSON schemas."""
    registry = get_registry(load_cli_settings(ctx))
    t = registry.get(name)
    if as_openai:
        echo_json(t.openai_schema())
        return
    if as_json:
        echo_json(t.describe())
        return
    info = t.describe()
    console.print(f"[bold]{t.name}[/bold]  [dim]{info['function']}[/dim]")
    meta = t.metadata
    console.print(
        f"family: {meta.family or '-'}   plugin: {meta.plugin or '-'}   heavy: {meta.heavy}   "
        f"tags: {', '.join(meta.tags) or '-'}"
    )
    if meta.paper:
        console.print(f"paper: {meta.paper}")
    console.print()
    console.print(_reflow(t.description), markup=False)
    console.print("\n[bold]arguments[/bold]")
    table = Table(show_header=True)
    for column in ("name", "type", "required", "default", "description"):
        table.add_column(column)
    schema = info["input_schema"]
    required = set(schema.get("required", []))
    for field_name, prop in schema.get("properties", {}).items():
        table.add_row(
            field_name,
            _type_of(prop),
            "yes" if field_name in required else "",
            "" if "default" not in prop else json.dumps(prop["default"]),
            prop.get("description", ""),
        )
    console.print(table)


def _reflow(text: str) -> str:
    """Join the hard-wrapped lines of each paragraph, so the terminal wraps them at its own width."""
    return "\n\n".join(" ".join(p.split()) for p in text.split("\n\n"))


def _type_of(prop: dict[str, Any]) -> str:
    if "type" in prop:
        inner = prop.get("items", {})
        return f"{prop['type']}[{_type_of(inner)}]" if prop["type"] == "array" and inner else str(prop["type"])
    if "anyOf" in prop:
        return " | ".join(_type_of(p) for p in prop["anyOf"])
    if "$ref" in prop:
        return str(prop["$ref"]).rsplit("/", 1)[-1]
    if "enum" in prop:
        return "one of " + ", ".join(map(str, prop["enum"]))
    return "any"


@command.command("run")
@click.argument("name")
@click.option(
    "--args",
    "args_text",
    default="{}",
    show_default=True,
    help="Arguments as a JSON object, or @FILE to read them from a JSON file.",
)
@click.option(
    "--isolation",
    type=click.Choice(_ISOLATIONS),
    default="auto",
    show_default=True,
    help="Where to run: auto (heavy tools in a process, others in a thread), inline, thread or process.",
)
@click.option("--timeout", type=float, default=None, help="Give up after this many seconds.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON only.")
@click.pass_context
def run_command(
    ctx: click.Context, name: str, args_text: str, isolation: str, timeout: float | None, as_json: bool
) -> None:
    """Run tool NAME with JSON arguments and print its result."""
    arguments = _read_arguments(args_text)
    registry = get_registry(load_cli_settings(ctx))
    result = registry.run_sync(name, arguments, isolation=isolation, timeout=timeout)  # type: ignore[arg-type]
    data = result.model_dump(mode="json")
    if as_json:
        echo_json(data)
        return
    console.print_json(json.dumps(data, default=str))


def _read_arguments(text: str) -> dict[str, Any]:
    if text.startswith("@"):
        path = Path(text[1:])
        if not path.is_file():
            raise ToolError(f"argument file {path} does not exist", hint="pass --args @FILE with an existing JSON file")
        text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ToolError(
            f"--args is not valid JSON: {exc}", hint="pass a JSON object, e.g. --args '{\"x\": 1}', or @FILE"
        ) from None
    if not isinstance(data, dict):
        raise ToolError("--args must be a JSON object", hint="e.g. --args '{\"x\": 1}'")
    return data


@command.command("recommend")
@click.argument("query")
@click.option("-k", "k", type=int, default=5, show_default=True, help="How many tools to recommend.")
@click.option(
    "--method", type=click.Choice(["bm25", "dense"]), default="bm25", show_default=True, help="Ranking method."
)
@click.option("--json", "as_json", is_flag=True, help="Print the recommendations as JSON.")
@click.pass_context
def recommend_command(ctx: click.Context, query: str, k: int, method: str, as_json: bool) -> None:
    """Rank the installed tools for a task description (BM25 or dense over names, descriptions and tags)."""
    from malot.tools.advisor import recommend

    settings = load_cli_settings(ctx)
    found = recommend(query, registry=get_registry(settings), k=k, method="dense" if method == "dense" else "bm25")
    if as_json:
        echo_json({"query": query, "recommendations": [r.model_dump(mode="json") for r in found]})
        return
    if not found:
        err_console.print("[yellow]no tool matches that description[/]; list them with 'malot tools list'")
        return
    table = Table(title=f"tools for: {escape(query)}")
    for column in ("tool", "score", "family", "entry point", "summary"):
        table.add_column(column)
    for r in found:
        table.add_row(r.name, f"{r.score:.2f}", r.family, escape(r.entry_point), escape(r.summary))
    console.print(table)
