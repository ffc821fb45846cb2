"""Registration module of the ``fewshot`` plugin, named by its ``malot.tools`` entry point.

Importing it imports every tool module; each module registers its tools with the ``@tool`` decorator. Keep this a
plain list of imports, one line per tool module.
"""

# ruff: noqa: F401
import malot_fewshot.aggregate
import malot_fewshot.kg_zero_shot
import malot_fewshot.laso
import malot_fewshot.latent_label_shift
import malot_fewshot.llp_bp
import malot_fewshot.name_tagging
import malot_fewshot.noise_shda
import malot_fewshot.pretrain_erm
import malot_fewshot.tmv_hlp
import malot_fewshot.transductive
