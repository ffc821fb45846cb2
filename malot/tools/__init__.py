"""Tools agents and users call by name: typed callables, a registry, and plugins found through entry points.

``@tool`` turns a plain typed function into a :class:`Tool` (pydantic input/output models and JSON schemas derived
from the signature) and registers it; :class:`ToolRegistry` renders the schemas in the OpenAI function-calling
format, validates arguments and runs tools in a thread or, for heavy ones, a process; :func:`load_plugins` imports
the registration modules named by the ``malot.tools`` entry-point group (allow-list: ``MALOT_PLUGINS``).
This package imports only pydantic; plugins import their heavy dependencies themselves.
"""

from malot.errors import PluginError, ToolError
from malot.tools.base import Tool, ToolMetadata, tool_of
from malot.tools.plugins import ENTRY_POINT_GROUP, PluginStatus, get_registry, load_plugins, plugin_statuses
from malot.tools.registry import Isolation, ToolRegistry, default_registry, tool
from malot.tools.source import RegistrySource, tool_tags

__all__ = [
    "ENTRY_POINT_GROUP",
    "Isolation",
    "PluginError",
    "PluginStatus",
    "RegistrySource",
    "Tool",
    "ToolError",
    "ToolMetadata",
    "ToolRegistry",
    "default_registry",
    "get_registry",
    "load_plugins",
    "plugin_statuses",
    "tool",
    "tool_of",
    "tool_tags",
]
