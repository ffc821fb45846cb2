"""Running a tool in a child process, for heavy tools: a crash or a memory spike stays in the child.

The child is started with the ``spawn`` method (no forked copies of the parent's threads or torch state). It imports
the tool's function by module and qualified name, so only tools defined at module level of an importable module can
run this way. Arguments and results cross the process boundary as JSON; errors come back as type, message and
traceback text and are raised in the parent as :class:`~malot.errors.ToolError`. A timeout or a cancelled caller
kills the child.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import json
import multiprocessing
import traceback
from multiprocessing.connection import Connection
from typing import Any

from malot.errors import ToolError
from malot.tools.base import Tool, tool_of

__all__ = ["run_in_process"]


def _resolve(module_name: str, qualname: str) -> Tool:
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    found = tool_of(obj)
    if found is None:
        raise ToolError(f"{module_name}:{qualname} is not a tool", hint="decorate it with @malot.tools.tool")
    return found


def _child_main(conn: Connection, module_name: str, qualname: str, tool_name: str, args_json: str) -> None:
    """Entry point of the child process: resolve, validate, run, and send back JSON (never raises)."""
    try:
        found = _resolve(module_name, qualname)
        args = found.validate_arguments(args_json)
        value = found.call_validated(args)
        if inspect.isawaitable(value):
            value = asyncio.run(_await(value))
        out = found.wrap_output(value)
        conn.send(("ok", out.model_dump_json()))
    except BaseException as exc:
        with contextlib.suppress(Exception):
            conn.send(("error", json.dumps({"type": type(exc).__name__, "message": str(exc), "tb": _tb(exc)})))
    finally:
        conn.close()


async def _await(value: Any) -> Any:
    return await value


def _tb(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def _wait_for_child(conn: Connection, timeout: float | None) -> tuple[str, str]:
    """Block until the child sends its answer (``("ok"|"error", json)``), exits silently or times out."""
    if not conn.poll(timeout):
        return ("timeout", "")
    try:
        answer: tuple[str, str] = conn.recv()
    except EOFError:
        return ("crashed", "")
    return answer


async def run_in_process(tool: Tool, args: Any, *, timeout: float | None = None) -> Any:  # noqa: ASYNC109
    """Run ``tool`` with validated ``args`` in a fresh spawned process and return its output-model instance."""
    module_name, qualname = tool.fn.__module__, tool.fn.__qualname__
    if module_name == "__main__" or "<locals>" in qualname:
        raise ToolError(
            f"tool {tool.name!r} ({module_name}:{qualname}) cannot run in a process: it is not importable by name",
            hint="define it at module level of an importable module, or run it in a thread",
        )
    ctx = multiprocessing.get_context("spawn")
    parent_conn, child_conn = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=_child_main,
        args=(child_conn, module_name, qualname, tool.name, args.model_dump_json()),
        name=f"malot-tool-{tool.name}",
        daemon=True,
    )
    proc.start()
    child_conn.close()
    answer: tuple[str, str] | None = None
    try:
        answer = await asyncio.to_thread(_wait_for_child, parent_conn, timeout)
    finally:
        # after an answer the child exits by itself; after a timeout or a cancelled caller it is killed
        if answer is not None and answer[0] in ("ok", "error"):
            await asyncio.to_thread(proc.join, 10.0)
        if proc.is_alive():
            proc.kill()
            await asyncio.to_thread(proc.join, 5.0)
        parent_conn.close()
    if answer is None or answer[0] == "timeout":
        raise ToolError(
            f"tool {tool.name!r} timed out after {timeout} s", hint="raise the timeout or use smaller inputs"
        )
    if answer[0] == "crashed":
        raise ToolError(
            f"tool {tool.name!r} crashed in its worker process (exit code {proc.exitcode})",
            hint="it may have run out of memory; run it with --isolation inline to see the traceback",
        )
    status, payload = answer
    if status == "ok":
        return tool.output_model.model_validate_json(payload)
    err = json.loads(payload)
    if err["type"] in ("ToolError", "PluginError"):
        raise ToolError(err["message"])
    last = " | ".join(err["tb"].strip().splitlines()[-3:])
    raise ToolError(
        f"tool {tool.name!r} failed: {err['type']}: {err['message']}",
        hint=f"run it with --isolation inline to debug; the worker's traceback ends with: {last}",
    )
