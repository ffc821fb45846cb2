"""Checkpoint conversions that let a backend serve a model it has no architecture for.

:mod:`malot.llm.convert.codegen` rewrites a CodeGen / CodeGen2 checkpoint as GPT-J (which vLLM serves natively);
:mod:`malot.llm.convert.cache` converts once into a cache folder for the vLLM backends. Nothing heavy is imported
here.
"""

from __future__ import annotations
