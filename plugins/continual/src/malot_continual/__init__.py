"""malot-continual: continual learning and unlearning as malot tools (the ``continual`` tool family).

Importing this package is light; torch and the other heavy libraries are imported by the functions that need them.
The tools are registered by :mod:`malot_continual.register`, which malot imports through the ``malot.tools`` entry
point. The continual loops are plain torch: avalanche-lib would fit, but every release pulls a torch newer than the
2.13 malot pins, so it is not used.
"""

__version__ = "0.1.0"
FAMILY = "continual"

__all__ = ["FAMILY", "__version__"]
