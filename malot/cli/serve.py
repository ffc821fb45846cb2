"""``malot serve``: the HTTP API (FastAPI + uvicorn; the ``serve`` extra) on the same prover as ``malot prove``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from malot.cli.common import err_console, load_cli_settings
from malot.errors import BackendUnavailableError
from malot.provers.registry import strategy_names


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--queue-size", default=50, show_default=True, type=click.IntRange(1), help="Jobs waiting before 429.")
@click.option("--workers", default=4, show_default=True, type=click.IntRange(1), help="Jobs proved at once.")
@click.option(
    "--store",
    type=click.Path(dir_okay=False),
    default=None,
    help="SQLite file for jobs (default: OUTPUT_DIR/server/jobs.sqlite); jobs in it resume on restart.",
)
@click.option("--token-file", type=click.Path(dir_okay=False), help="API keys, one per line; requires Bearer auth.")
@click.option("--model", help="Model: local folder or hub id, http(s)://host:port/v1#name, or script:FILE.")
@click.option("--backend", type=click.Choice(["auto", "vllm", "hf", "openai", "script"]), help="LLM backend.")
@click.option("--strategy", type=click.Choice(strategy_names()), help="Default strategy for jobs.")
@click.option("--lean", "lean_path", type=click.Path(dir_okay=False), help="A lean executable (file backend).")
@click.option("--project", type=click.Path(file_okay=False), help="A Lake project (REPL pool and lake env lean).")
@click.option("--kimina", "kimina_url", help="URL of a Kimina Lean Server.")
@click.option("--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning"]))
@click.pass_context
def command(
    ctx: click.Context,
    host: str,
    port: int,
    queue_size: int,
    workers: int,
    store: str | None,
    token_file: str | None,
    model: str | None,
    backend: str | None,
    strategy: str | None,
    lean_path: str | None,
    project: str | None,
    kimina_url: str | None,
    log_level: str,
) -> None:
    """Serve the HTTP API: proving jobs with streaming, cancellation and a bounded queue; proof verification
    (also in Kimina Lean Server's /verify shape); OpenAPI docs at /docs."""
    try:
        import uvicorn
    except ImportError:
        raise BackendUnavailableError(
            "malot serve needs FastAPI and uvicorn", hint="pip install 'malot[serve]'"
        ) from None
    from malot.server.app import create_app, load_api_keys
    from malot.server.runtime import ProverRuntime

    overrides: dict[str, Any] = {
        "llm.model": model,
        "llm.backend": backend,
        "prover.strategy": strategy,
        "lean.lean_path": lean_path,
        "lean.project": project,
        "lean.kimina_url": kimina_url,
    }
    if lean_path:
        overrides["lean.backend"] = "file"
    settings = load_cli_settings(ctx, overrides)
    keys = load_api_keys(token_file)
    store_path = Path(store) if store else settings.output.dir / "server" / "jobs.sqlite"
    runtime = ProverRuntime(settings)

    async def start() -> None:
        await runtime.__aenter__()

    app = create_app(
        runner=runtime.run,
        verify=runtime.verify,
        store_path=store_path,
        queue_size=queue_size,
        workers=workers,
        api_keys=keys,
        on_startup=start,
        on_shutdown=runtime.aclose,
    )
    err_console.print(f"malot serve on http://{host}:{port} (docs at /docs, jobs in {store_path})")
    uvicorn.run(app, host=host, port=port, log_level=log_level)
