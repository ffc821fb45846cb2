"""malot-select: transferability estimation and model/task selection tools for malot.

The tools register through the ``malot.tools`` entry point ``select`` (module :mod:`malot_select.register`).
Shared math lives in :mod:`malot_select.core`.
"""
