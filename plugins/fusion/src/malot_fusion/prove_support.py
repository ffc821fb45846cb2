"""What the fusion decoding hook (:mod:`malot_fusion.decoding`) calls: build the fused LLM, then record its weights.

* :func:`fused_llm_from_settings` builds a :class:`~malot_fusion.fused_llm.FusedTransformersLLM` for the
  configured ``llm.model`` (device and dtype from the settings); pass it to ``Prover(settings, llm=...)``.
* :func:`append_fusion_note` appends the per-step weights of every fused ``generate`` call to the run's trace as a
  ``note`` event of the proof's group (``data.fusion``), readable with :func:`malot.agents.read_trace`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from malot.errors import ConfigError
from malot_fusion.fused_llm import FusedTransformersLLM, fused_llm

__all__ = ["append_fusion_note", "fused_llm_from_settings"]


def fused_llm_from_settings(settings: Any, experts: Sequence[str], base: str | None) -> FusedTransformersLLM:
    """The fused LLM for ``settings.llm.model`` with ``experts`` over ``base`` (transformers backend)."""
    if not experts or not base:
        raise ConfigError("fusion needs both --fuse-expert (one or more) and --fuse-base")
    llm = settings.llm
    if llm.backend not in ("auto", "hf"):
        raise ConfigError(
            f"logit fusion runs on the transformers backend, not {llm.backend!r}", hint="use --backend hf or auto"
        )
    if not llm.model:
        raise ConfigError("fusion needs the large model", hint="pass --model LARGE (a local folder)")
    return fused_llm(llm.model, list(experts), base, device=llm.device, dtype=llm.dtype)


def append_fusion_note(trace: str | Path | None, group_id: str, llm: FusedTransformersLLM) -> dict[str, Any]:
    """Append the fusion record (and forget it in ``llm``) to the JSONL trace as a note of ``group_id``.

    Returns the record; with ``trace`` ``None`` nothing is written.
    """
    record = llm.pop_trace_note()
    record["fusion_experts"] = list(llm.expert_names)
    record["fusion_base"] = llm.base_name
    record["fusion_bounds"] = [llm.lower, llm.upper]
    if trace is not None:
        event = {"type": "note", "group_id": group_id, "time": time.time(), "data": {"fusion": record}}
        with Path(trace).open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(event) + "\n")
    return record
