"""Registration module of the ``peft`` plugin, named by its ``malot.tools`` entry point.

Importing it imports every tool module; each module registers its tools with the ``@tool`` decorator. Keep this a
plain list of imports, one line per tool module.
"""

# ruff: noqa: F401
import malot_peft.ladder
import malot_peft.scalearn
import malot_peft.sherl
import malot_peft.unified_peft
import malot_peft.unipt
