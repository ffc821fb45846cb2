"""malot-fewshot: few/zero-shot learning and weak-supervision tools (the ``fewshot`` tool family).

Importing this package is light; numpy, scikit-learn and torch are imported by the functions that need them. The
tools are registered by :mod:`malot_fewshot.register`, which malot imports through the ``malot.tools`` entry point.
"""

__version__ = "0.1.0"
FAMILY = "fewshot"

__all__ = ["FAMILY", "__version__"]
