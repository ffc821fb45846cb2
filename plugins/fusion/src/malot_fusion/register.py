"""Registration module of the ``fusion`` plugin, named by its ``malot.tools`` entry point.

Importing it registers the family's tools (one per method, defined in :mod:`malot_fusion.tools`).
"""

# ruff: noqa: F401
import malot_fusion.tools
