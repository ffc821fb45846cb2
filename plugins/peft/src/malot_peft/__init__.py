"""malot's ``peft`` tool plugin: parameter- and memory-efficient transfer of frozen backbones.

Tools: ``make_peft`` (the unified adapter / prefix / LoRA view, MAM adapter), ``scalearn`` (scaled combination of
frozen source adapters), ``ladder_side_tune`` (Ladder Side-Tuning), ``unipt`` (UniPT) and ``sherl`` (SHERL).
Registered through the ``malot.tools`` entry point ``peft = malot_peft.register``.
"""
