"""malot-weights: tools that merge and compose models in weight space (the ``weights`` tool family).

Importing this package is light; torch and safetensors are imported by the functions that need them. The tools are
registered by :mod:`malot_weights.register`, which malot imports through the ``malot.tools`` entry point.
"""

__version__ = "0.1.0"
FAMILY = "weights"

__all__ = ["FAMILY", "__version__"]
