"""Registration module of the ``data`` plugin, named by its ``malot.tools`` entry point.

Importing it imports every tool module; each module registers its tools with the ``@tool`` decorator. Keep this a
plain list of imports, one line per tool module.
"""

# ruff: noqa: F401
import malot_data.allocate_samples
import malot_data.datm_distill
import malot_data.distill_unlabeled
import malot_data.dwa_synthesize
import malot_data.idm_select
import malot_data.prune_source
import malot_data.select_instructions
import malot_data.select_subset
import malot_data.semdedup
