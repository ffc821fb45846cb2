"""Registration module of the ``continual`` plugin, named by its ``malot.tools`` entry point.

Importing it imports every tool module; each module registers its tools with the ``@tool`` decorator. Keep this a
plain list of imports, one line per tool module.
"""

# ruff: noqa: F401
import malot_continual.bt2
import malot_continual.consolidation
import malot_continual.cuber
import malot_continual.laf
import malot_continual.lingo
import malot_continual.open_world
import malot_continual.stream
