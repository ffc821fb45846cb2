"""``malot doctor`` checks for tool plugins: which ``malot.tools`` plugins were found, loaded, failed or disabled."""

from __future__ import annotations

from malot.config import Settings
from malot.doctor import Check
from malot.tools.plugins import discover_entry_points, load_plugins

__all__ = ["checks"]


def checks(settings: Settings) -> list[Check]:
    """One check per discovered plugin (tools and decoding hooks), or a warning when no tool plugin is installed."""
    return [*_tool_plugin_checks(settings), *_decoding_hook_checks()]


def _decoding_hook_checks() -> list[Check]:
    """One check per ``malot.decoding`` entry point (the hooks that add options to ``malot prove``)."""
    from malot.provers.decoding import decoding_hook_statuses, load_decoding_hooks

    load_decoding_hooks()
    out: list[Check] = []
    for status in decoding_hook_statuses():
        name = f"decoding hook {status.name}"
        if status.state == "loaded":
            out.append(Check("tools", name, "ok", f"{status.value}: malot prove {' '.join(status.options)}"))
        elif status.state == "disabled":
            out.append(Check("tools", name, "warn", f"{status.value}: disabled by MALOT_PLUGINS", "add it there"))
        else:
            hint = f"reinstall it, or run: python -c 'import {status.value.split(':')[0]}' to see the traceback"
            out.append(Check("tools", name, "error", f"{status.value}: failed to load: {status.error}", hint))
    return out


def _tool_plugin_checks(settings: Settings) -> list[Check]:
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
