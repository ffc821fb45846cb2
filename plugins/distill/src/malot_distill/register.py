"""Registration module of the ``distill`` plugin, named by its ``malot.tools`` entry point.

Importing it imports every tool module; each registers its tools with the ``@tool`` decorator. One line per module.
"""

# ruff: noqa: F401
import malot_distill.class_relation_kd
import malot_distill.distill_pool
import malot_distill.knowledge_transfer
import malot_distill.look
import malot_distill.meta_dmoe
import malot_distill.robustify
import malot_distill.sla
