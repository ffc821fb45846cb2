"""malot-fusion: inference-time fusion and retrieval tools for malot.

One module per method: :mod:`~malot_fusion.dynamic_logits_fusion` (with :mod:`~malot_fusion.fusion_processor` and
:mod:`~malot_fusion.fused_llm` for decoding), :mod:`~malot_fusion.btm_ensemble`, :mod:`~malot_fusion.loki`,
:mod:`~malot_fusion.binary_pv`, :mod:`~malot_fusion.retrieve_coseg`, :mod:`~malot_fusion.gpicl`,
:mod:`~malot_fusion.set2seq`. Their tools are registered by :mod:`malot_fusion.register` (the ``malot.tools`` entry
point). :mod:`~malot_fusion.vllm_fusion` runs the fusion inside a vLLM engine, :mod:`~malot_fusion.decoding` is
the ``malot.decoding`` hook behind ``malot prove --fuse-expert/--fuse-base``, :mod:`~malot_fusion.testing`
builds tiny offline model trios. Importing this package is light: torch is imported by the method modules only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["__version__", "fused_llm"]

__version__ = "0.1.0"

if TYPE_CHECKING:
    from malot_fusion.fused_llm import FusedTransformersLLM


def fused_llm(large: Any, experts: Any, base: Any, **kwargs: Any) -> FusedTransformersLLM:
    """Build an ``LLM`` that decodes ``large`` fused with small ``experts`` over their small ``base``.

    A light entry point that imports torch/transformers only when called; see
    :func:`malot_fusion.fused_llm.fused_llm` for the arguments.
    """
    from malot_fusion.fused_llm import fused_llm as build

    return build(large, experts, base, **kwargs)
