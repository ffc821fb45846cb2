"""Registration module of the ``domains`` plugin, named by its ``malot.tools`` entry point.

Importing it imports every tool module; each module registers its tools with the ``@tool`` decorator. Keep this a
plain list of imports, one line per tool module.
"""

# ruff: noqa: F401
import malot_domains.ddae
import malot_domains.eeg
import malot_domains.gcrl
import malot_domains.translate
import malot_domains.ttm
