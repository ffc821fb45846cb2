"""The :class:`ToolRegistry`: tools by name, their schemas for agents, argument validation and running.

There is one process-wide default registry (:func:`default_registry`) that the :func:`~malot.tools.tool` decorator
fills; tests and embedders can make their own. Running a tool validates its arguments, then calls it inline, in a
worker thread (the default for ordinary tools, so the event loop stays responsive) or in a spawned process (the
default for tools marked ``heavy``), and returns an instance of the tool's output model. Every failure becomes a
:class:`~malot.errors.ToolError` whose message names the tool and says what to do.
"""

from __future__ import annotations

import asyncio
import builtins
import difflib
import inspect
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal, TypedDict, TypeVar, Unpack, overload

from pydantic import BaseModel

from malot.errors import MalotError, ToolError
from malot.tools.base import TOOL_ATTRIBUTE, Tool, tool_of

__all__ = ["Isolation", "ToolOptions", "ToolRegistry", "default_registry", "tool"]

Isolation = Literal["auto", "inline", "thread", "process"]
F = TypeVar("F", bound=Callable[..., Any])


class ToolRegistry:
    """A set of tools by name.

    Registering the same function twice (for example because a plugin module was loaded twice) is harmless; a
    *different* function under a name already taken is an error, unless ``replace=True``. ``on_miss`` is called once
    when :meth:`get` does not find a name (the default registry uses it to load plugins lazily).
    """

    def __init__(self, tools: Sequence[Tool] = (), *, on_miss: Callable[[ToolRegistry], None] | None = None) -> None:
        self._tools: dict[str, Tool] = {}
        self._lock = threading.RLock()
        self._on_miss = on_miss
        for t in tools:
            self.register(t)

    # --- contents ----------------------------------------------------------------------------------------------

    def register(self, item: Tool | Callable[..., Any], *, replace: bool = False) -> Tool:
        """Add a tool (or a decorated or plain typed function, wrapped on the fly) and return it."""
        new = tool_of(item) or Tool.from_function(item)
        with self._lock:
            old = self._tools.get(new.name)
            if old is not None and not replace and not _same_function(old, new):
                raise ToolError(
                    f"tool name {new.name!r} is already taken by {_origin(old)}; cannot register {_origin(new)}",
                    hint="give one of them another name with @tool(name=...), or disable one plugin via MALOT_PLUGINS",
                )
            if old is not None and old.metadata.plugin and not new.metadata.plugin:
                new.metadata = new.metadata.model_copy(update={"plugin": old.metadata.plugin})
            self._tools[new.name] = new
        return new

    def unregister(self, name: str) -> None:
        """Remove a tool (no error if it is absent)."""
        with self._lock:
            self._tools.pop(name, None)

    def get(self, name: str) -> Tool:
        """The tool called ``name``; raises :class:`ToolError` with the closest names if there is none."""
        with self._lock:
            found = self._tools.get(name)
        if found is None and self._on_miss is not None:
            self._on_miss(self)
            with self._lock:
                found = self._tools.get(name)
        if found is None:
            close = difflib.get_close_matches(name, self.names(), n=3)
            hint = (
                f"did you mean {', '.join(close)}?"
                if close
                else "list tools with 'malot tools list'; install plugins with 'pip install -e plugins/<name>'"
            )
            raise ToolError(f"no tool named {name!r}", hint=hint)
        return found

    def __contains__(self, name: object) -> bool:
        with self._lock:
            return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self.list())

    def __len__(self) -> int:
        with self._lock:
            return len(self._tools)

    def names(self) -> list[str]:
        """Sorted tool names."""
        with self._lock:
            return sorted(self._tools)

    def list(self, *, family: str | None = None, tag: str | None = None) -> list[Tool]:
        """Tools sorted by name, optionally only one family or those carrying a tag."""
        with self._lock:
            tools = [self._tools[n] for n in sorted(self._tools)]
        if family is not None:
            tools = [t for t in tools if t.metadata.family == family]
        if tag is not None:
            tools = [t for t in tools if tag in t.metadata.tags]
        return tools

    # --- for agents ----------------------------------------------------------------------------------------------

    def openai_tools(self, names: Sequence[str] | None = None) -> builtins.list[dict[str, Any]]:
        """Schemas in the OpenAI function-calling format, for ``tools=`` of a chat request."""
        tools = self.list() if names is None else [self.get(n) for n in names]
        return [t.openai_schema() for t in tools]

    def validate(self, name: str, arguments: Mapping[str, Any] | BaseModel | str | None) -> BaseModel:
        """Validate arguments (mapping, JSON text or model) for tool ``name``; raises :class:`ToolError`."""
        return self.get(name).validate_arguments(arguments)

    # --- running -------------------------------------------------------------------------------------------------

    async def run(
        self,
        name: str,
        arguments: Mapping[str, Any] | BaseModel | str | None = None,
        *,
        isolation: Isolation = "auto",
        timeout: float | None = None,  # noqa: ASYNC109 (a process is killed on timeout, so it cannot be a scope)
    ) -> BaseModel:
        """Validate the arguments, run tool ``name`` and return its typed output.

        ``isolation``: ``"auto"`` runs heavy tools in a process and others in a worker thread (async tools run on
        the event loop); ``"inline"`` calls the function in the current thread. ``timeout`` (seconds) applies to
        every mode; a timed-out process is killed, a timed-out thread is abandoned (Python cannot stop it).
        """
        t = self.get(name)
        args = t.validate_arguments(arguments)
        mode = isolation
        if mode == "auto":
            mode = "process" if t.metadata.heavy else ("inline" if t.is_async else "thread")
        try:
            if mode == "process":
                from malot.tools.isolation import run_in_process

                result: BaseModel = await run_in_process(t, args, timeout=timeout)
                return result
            return await asyncio.wait_for(self._run_here(t, args, threaded=mode == "thread"), timeout)
        except MalotError:
            raise
        except TimeoutError:
            raise ToolError(
                f"tool {name!r} timed out after {timeout} s", hint="raise the timeout or use smaller inputs"
            ) from None
        except Exception as exc:
            raise ToolError(
                f"tool {name!r} failed: {type(exc).__name__}: {exc}", hint="check the arguments against the schema"
            ) from exc

    async def _run_here(self, t: Tool, args: BaseModel, *, threaded: bool) -> BaseModel:
        if t.is_async:
            value = await t.call_validated(args)
        elif threaded:
            value = await asyncio.to_thread(t.call_validated, args)
        else:
            value = t.call_validated(args)
            if inspect.isawaitable(value):
                value = await value
        return t.wrap_output(value)

    def run_sync(
        self,
        name: str,
        arguments: Mapping[str, Any] | BaseModel | str | None = None,
        *,
        isolation: Isolation = "auto",
        timeout: float | None = None,
    ) -> BaseModel:
        """:meth:`run` for code without an event loop (the CLI, scripts)."""
        return asyncio.run(self.run(name, arguments, isolation=isolation, timeout=timeout))

    async def call_json(self, name: str, arguments: str | Mapping[str, Any] | None) -> dict[str, Any]:
        """Run a tool call as an agent makes it and answer in JSON: ``{"ok": true, "output": ...}`` or
        ``{"ok": false, "error": "..."}``, so a model can read its own mistakes and retry."""
        try:
            out = await self.run(name, arguments)
        except ToolError as exc:
            return {"ok": False, "error": str(exc)}
        return {"ok": True, "output": out.model_dump(mode="json")}


def _same_function(a: Tool, b: Tool) -> bool:
    if a.fn is b.fn:
        return True
    same_name = a.fn.__module__ == b.fn.__module__ and a.fn.__qualname__ == b.fn.__qualname__
    return same_name and "<locals>" not in a.fn.__qualname__


def _origin(t: Tool) -> str:
    plugin = f" (plugin {t.metadata.plugin})" if t.metadata.plugin else ""
    return f"{t.fn.__module__}:{t.fn.__qualname__}{plugin}"


def _load_plugins_into(registry: ToolRegistry) -> None:
    from malot.tools.plugins import load_plugins

    load_plugins(registry=registry)


_DEFAULT: ToolRegistry | None = None
_DEFAULT_LOCK = threading.Lock()


def default_registry() -> ToolRegistry:
    """The process-wide registry the :func:`tool` decorator fills (plugins are loaded separately, see
    :func:`malot.tools.load_plugins` and :func:`malot.tools.get_registry`)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = ToolRegistry(on_miss=_load_plugins_into)
        return _DEFAULT


class ToolOptions(TypedDict, total=False):
    """What :func:`tool` accepts besides the function (the keyword arguments of :meth:`Tool.from_function`)."""

    name: str | None
    description: str | None
    input_model: type[BaseModel] | None
    output_model: type[BaseModel] | None
    family: str
    paper: str
    tags: Sequence[str]
    heavy: bool


@overload
def tool(fn: F, *, registry: ToolRegistry | None = None, **options: Unpack[ToolOptions]) -> F: ...


@overload
def tool(
    fn: None = None, *, registry: ToolRegistry | None = None, **options: Unpack[ToolOptions]
) -> Callable[[F], F]: ...


def tool(
    fn: F | None = None, *, registry: ToolRegistry | None = None, **options: Unpack[ToolOptions]
) -> F | Callable[[F], F]:
    """Register a plain typed function as a tool, and return the function unchanged (with ``__malot_tool__`` set).

    Use bare (``@tool``) or with options (``@tool(family="weights", heavy=True)``; see :class:`ToolOptions`). The
    input model is derived from the signature unless the function takes one pydantic model argument or
    ``input_model`` is given; the output model is the return annotation if it is a pydantic model, else
    ``{"result": <return type>}``. ``registry`` defaults to the default registry.
    """

    def decorate(f: F) -> F:
        t = Tool.from_function(f, **options)
        setattr(f, TOOL_ATTRIBUTE, t)
        (registry if registry is not None else default_registry()).register(t)
        return f

    if fn is not None:
        return decorate(fn)
    return decorate
