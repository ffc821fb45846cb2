"""Registration module of the ``weights`` plugin, named by its ``malot.tools`` entry point.

Importing it imports every tool module; each module registers its tools with the ``@tool`` decorator. Keep this a
plain list of imports, one line per tool module.
"""

# ruff: noqa: F401
import malot_weights.btm
import malot_weights.clp
import malot_weights.d2nwg
import malot_weights.fisher
import malot_weights.kind
import malot_weights.sparse_ft
import malot_weights.task_vectors
import malot_weights.tleg
import malot_weights.trans_lora
