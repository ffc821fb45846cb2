"""``malot doctor`` checks for tool plugins: which ``malot.tools`` plugins were found, loaded, failed or disabled."""

from __future__ import annotations

from malot.config import Settings
from malot.doctor import Check
from malot.tools.plugins import discover_entry_points, load_plugins

__all__ = ["checks"]


def checks(settings: Settings) -> list[Check]:
    """One check per discovered plugin, or a warning when none is installed."""
    if not discover_entry_points():
        return [
            Check(
                "tools",
                "plugins",
                "warn",
                "no tool plugins installed (entry-point group 'malot.tools')",
                "pip install -e plugins/weights",
            )
        ]
    out: list[Check] = []
    for status in load_plugins(settings=settings):
        origin = f"{status.distribution} {status.version}".strip() or status.module
        if status.state == "loaded":
            out.append(Check("tools", f"plugin {status.name}", "ok", f"{origin}: {len(status.tools)} tools"))
        elif status.state == "disabled":
            out.append(
                Check(
                    "tools",
                    f"plugin {status.name}",
                    "warn",
                    f"{origin}: disabled by the allow-list",
                    "add it to MALOT_PLUGINS or tools.plugins to load it",
                )
            )
        else:
            out.append(
                Check(
                    "tools",
                    f"plugin {status.name}",
                    "error",
                    f"{origin}: failed to load: {status.error}",
                    f"reinstall it, or run: python -c 'import {status.module.split(':')[0]}' to see the traceback",
                )
            )
    return out
