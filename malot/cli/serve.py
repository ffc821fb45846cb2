"""``malot serve``: the HTTP API (FastAPI + uvicorn; the ``serve`` extra) on the same prover as ``malot prove``."""

from __future__ import annotations

import asyncio
import errno
import socket
from pathlib import Path
from typing import Any

import click

from malot.cli.common import err_console, load_cli_settings
from malot.errors import BackendUnavailableError, MalotError
from malot.provers.registry import strategy_names


class ServeError(MalotError):
    """``malot serve`` cannot start (port taken, model or Lean unusable): one line, exit 2."""


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
    from malot.server.app import load_api_keys

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
    listener = bind_listener(host, port)  # before the (slow) model and Lean start: a taken port fails at once
    try:
        asyncio.run(_serve(uvicorn, settings, listener, keys, store_path, queue_size, workers, log_level))
    except KeyboardInterrupt:  # Ctrl-C: uvicorn has shut down gracefully and re-raised the signal
        err_console.print("malot serve stopped")
    finally:
        listener.close()


def bind_listener(host: str, port: int) -> socket.socket:
    """The listening socket for ``host:port``, or one clear :class:`ServeError` (port taken, address invalid)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror}", hint="check --host") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ServeError(
                f"port {port} on {host} is already in use", hint="stop what listens there or pick another --port"
            ) from None
        raise ServeError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}", hint="check --host and --port"
        ) from None
    sock.setblocking(False)
    return sock


async def _serve(
    uvicorn: Any,
    settings: Any,
    listener: socket.socket,
    keys: frozenset[str] | None,
    store_path: Path,
    queue_size: int,
    workers: int,
    log_level: str,
) -> None:
    """Open the prover (model and Lean) first, so a bad --lean or model is one clear error, then serve."""
    from malot.server.app import create_app
    from malot.server.runtime import ProverRuntime

    runtime = ProverRuntime(settings)
    try:
        await runtime.__aenter__()
    except MalotError as exc:
        await runtime.aclose()
        raise ServeError(f"malot serve could not start: {exc}") from None
    except Exception as exc:  # a backend's own failure: still one line
        await runtime.aclose()
        raise ServeError(f"malot serve could not start: {type(exc).__name__}: {exc}") from None
    app = create_app(
        runner=runtime.run,
        lean=runtime,
        store_path=store_path,
        queue_size=queue_size,
        workers=workers,
        api_keys=keys,
        on_shutdown=runtime.aclose,
    )
    host, port = listener.getsockname()[:2]
    err_console.print(f"malot serve on http://{host}:{port} (docs at /docs, jobs in {store_path})", soft_wrap=True)
    config = uvicorn.Config(app, log_level=log_level)
    await uvicorn.Server(config).serve(sockets=[listener])
