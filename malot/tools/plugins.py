"""Discovering tool plugins through the ``malot.tools`` entry-point group.

A plugin distribution declares, in its ``pyproject.toml``::

    [project.entry-points."malot.tools"]
    weights = "malot_weights.register"

The value names a *registration module*; importing it registers the plugin's tools (with the
:func:`~malot.tools.tool` decorator) into the default registry. Nothing is imported until tools are first needed
(:func:`get_registry`, or a lookup miss in the default registry). Which plugins load is chosen by an allow-list:
the ``allow`` argument, else the ``MALOT_PLUGINS`` environment variable (comma-separated names; empty loads none),
else ``settings.tools.plugins``, else all. A plugin that fails to import is recorded as failed, with the error, and
the others still load. Loading again is harmless: each entry point is imported once and its status remembered.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import threading
import traceback
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from malot.tools.registry import ToolRegistry, default_registry

if TYPE_CHECKING:
    from malot.config import Settings

__all__ = ["ENTRY_POINT_GROUP", "PluginStatus", "get_registry", "load_plugins", "plugin_allow_list", "reset_plugins"]

ENTRY_POINT_GROUP = "malot.tools"
PLUGINS_ENV = "MALOT_PLUGINS"

PluginState = Literal["loaded", "failed", "disabled"]


class PluginStatus(BaseModel):
    """What happened to one entry point: loaded (with the tools it added), failed (with the error), or disabled by
    the allow-list."""

    model_config = ConfigDict(frozen=True)

    name: str
    module: str
    distribution: str = ""
    version: str = ""
    state: PluginState
    tools: tuple[str, ...] = ()
    error: str = ""
    traceback: str = ""


_LOCK = threading.RLock()
#: (registry id, entry point name, module) -> status; makes loading idempotent per registry
_STATUS: dict[tuple[int, str, str], PluginStatus] = {}


def plugin_allow_list(settings: Settings | None = None) -> list[str] | None:
    """The allow-list in effect: ``MALOT_PLUGINS`` (comma-separated), else ``settings.tools.plugins``; ``None``
    means every installed plugin."""
    raw = os.environ.get(PLUGINS_ENV)
    if raw is not None:
        return [part.strip() for part in raw.split(",") if part.strip()]
    if settings is not None and settings.tools.plugins is not None:
        return list(settings.tools.plugins)
    return None


def discover_entry_points() -> list[importlib.metadata.EntryPoint]:
    """Every entry point of the ``malot.tools`` group in the installed distributions (first one per name wins)."""
    seen: dict[str, importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        seen.setdefault(ep.name, ep)
    return [seen[name] for name in sorted(seen)]


def load_plugins(
    *,
    allow: Sequence[str] | None = None,
    settings: Settings | None = None,
    registry: ToolRegistry | None = None,
    entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
) -> list[PluginStatus]:
    """Import the registration module of every allowed ``malot.tools`` entry point; return one status per plugin.

    Never raises for a broken plugin: its status says ``failed`` with the error. Tools register into ``registry``
    (default: the default registry); a plugin's registration module that registers into the default registry
    while another registry is given is copied over.
    """
    target = registry if registry is not None else default_registry()
    allowed = list(allow) if allow is not None else plugin_allow_list(settings)
    eps = list(entry_points) if entry_points is not None else discover_entry_points()
    out: list[PluginStatus] = []
    with _LOCK:
        for ep in eps:
            dist_name, dist_version = _dist_of(ep)
            if allowed is not None and ep.name not in allowed:
                out.append(
                    PluginStatus(
                        name=ep.name, module=ep.value, distribution=dist_name, version=dist_version, state="disabled"
                    )
                )
                continue
            key = (id(target), ep.name, ep.value)
            if key not in _STATUS:
                _STATUS[key] = _load_one(ep, target, dist_name, dist_version)
            out.append(_STATUS[key])
    return out


def _load_one(ep: importlib.metadata.EntryPoint, target: ToolRegistry, dist: str, version: str) -> PluginStatus:
    source = default_registry()
    before = {t.name: t for t in source.list()}
    before_target = set(target.names())
    try:
        module_name = ep.value.split(":")[0].strip()
        module = importlib.import_module(module_name)
        attr = ep.value.split(":", 1)[1].strip() if ":" in ep.value else ""
        if attr:
            # an entry point may name a callable ``module:register`` taking the registry
            register = getattr(module, attr)
            register(target)
        added = [t for t in source.list() if t.name not in before or before[t.name] is not t]
        package = module_name.split(".")[0]
        if source is not target:
            # the plugin's tools in the default registry: those this import added, and those an earlier import of
            # the same module registered there (importing it again registers nothing new)
            mine = [t for t in source.list() if t in added or t.fn.__module__.split(".")[0] == package]
            for t in mine:
                if t.name not in target:
                    target.register(t)
        own = {t.name for t in target.list() if t.fn.__module__.split(".")[0] == package}
        names = sorted((set(target.names()) - before_target) | {t.name for t in added} | own)
        for name in names:
            t = target.get(name)
            if not t.metadata.plugin:
                t.metadata = t.metadata.model_copy(update={"plugin": ep.name})
        return PluginStatus(
            name=ep.name, module=ep.value, distribution=dist, version=version, state="loaded", tools=tuple(names)
        )
    except Exception as exc:
        return PluginStatus(
            name=ep.name,
            module=ep.value,
            distribution=dist,
            version=version,
            state="failed",
            error=f"{type(exc).__name__}: {exc}",
            traceback="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        )


def _dist_of(ep: importlib.metadata.EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "", ""
    try:
        return str(dist.metadata["Name"] or dist.name), str(dist.version)
    except Exception:
        return "", ""


def get_registry(settings: Settings | None = None, *, allow: Sequence[str] | None = None) -> ToolRegistry:
    """The default registry with the allowed plugins loaded (once); what agents and the CLI use."""
    registry = default_registry()
    load_plugins(allow=allow, settings=settings, registry=registry)
    return registry


def plugin_statuses() -> list[PluginStatus]:
    """Statuses of every plugin loaded (or attempted) so far into the default registry."""
    rid = id(default_registry())
    with _LOCK:
        return [s for (r, _, _), s in _STATUS.items() if r == rid]


def reset_plugins() -> None:
    """Forget which plugins were loaded (for tests); already imported modules stay imported."""
    with _LOCK:
        _STATUS.clear()
