"""Registration module of the ``sparse`` plugin, named by its ``malot.tools`` entry point.

Importing it imports every tool module; each module registers its tools with the ``@tool`` decorator. Keep this a
plain list of imports, one line per tool module.
"""

# ruff: noqa: F401
import malot_sparse.das
import malot_sparse.lottery
import malot_sparse.maskllm
import malot_sparse.n2n
import malot_sparse.reprogram
import malot_sparse.tas
