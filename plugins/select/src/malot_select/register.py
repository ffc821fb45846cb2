"""Registration module of the ``select`` plugin, named by its ``malot.tools`` entry point.

Importing it imports every tool module; each module registers its tools with the ``@tool`` decorator. Keep this a
plain list of imports, one line per tool module.
"""

# ruff: noqa: F401
import malot_select.autotransfer
import malot_select.inductive_bias
import malot_select.invariance
import malot_select.mbtl
import malot_select.osborn
import malot_select.ped
import malot_select.w2pgnn
