"""Dynamic Logits Fusion inside the vLLM (V1) engine, as a custom logits processor.

vLLM V1 takes batch-level logits processor *classes* (``logits_processors=[...]`` engine argument) that it builds
inside the engine process; its :class:`~vllm.v1.sample.logits_processor.AdapterLogitsProcessor` turns them into
per-request callables that receive the request's prompt token ids, a live reference to its output token ids and
its row of logits. :class:`FusionVllmLogitsProcessor` uses that: it loads the small experts and base (transformers
models on the engine's device) once, and gives every request its own
:class:`~malot_fusion.fusion_processor.FusionLogitsProcessor` with private KV caches, so each decoding step costs one
incremental pass of each small model per request. The requests' small-model passes are not batched together (the
adapter hands rows over one at a time), which is the price of vLLM's per-request hook.

Configure it through the engine arguments (:func:`fusion_engine_args` builds them), e.g. with malot's vLLM backend:
``VllmLLM(large, engine_options=fusion_engine_args(["expert/"], "base/"))``. A request opts out with
``SamplingParams(extra_args={"malot_fusion": False})``. The per-step weights live in the engine process; give
``record_path`` to append them (JSON lines, one per step and request) to a file.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from vllm.v1.sample.logits_processor import AdapterLogitsProcessor

from malot_fusion.dynamic_logits_fusion import FusionRecorder, FusionStep
from malot_fusion.fusion_processor import FusionLogitsProcessor

__all__ = ["CONFIG_KEY", "FusionVllmLogitsProcessor", "fusion_engine_args"]

#: The key of the fusion settings in vLLM's ``additional_config``.
CONFIG_KEY = "malot_fusion"
_FQCN = "malot_fusion.vllm_fusion:FusionVllmLogitsProcessor"


def fusion_engine_args(
    experts: Sequence[str],
    base: str,
    *,
    lower: float = 0.0,
    upper: float = 2.0,
    objective: str = "marginal",
    record_path: str | None = None,
) -> dict[str, Any]:
    """Engine arguments that install fusion in a vLLM engine (``logits_processors`` and ``additional_config``)."""
    config = {
        "experts": [str(e) for e in experts],
        "base": str(base),
        "lower": lower,
        "upper": upper,
        "objective": objective,
        "record_path": record_path,
    }
    return {"logits_processors": [_FQCN], "additional_config": {CONFIG_KEY: config}}


class _RequestFusion:
    """One request's fusion state: a processor over the shared small models with this request's own caches."""

    def __init__(self, owner: FusionVllmLogitsProcessor, request: int) -> None:
        self.owner = owner
        self.request = request
        self.processor = FusionLogitsProcessor(
            owner.experts,
            owner.base,
            lower=owner.lower,
            upper=owner.upper,
            objective=owner.objective,
            recorder=FusionRecorder(callback=self._record),
        )

    def _record(self, step: FusionStep) -> None:
        self.owner.record(self.request, step)

    def __call__(self, prompt_ids: list[int], output_ids: list[int], logits: torch.Tensor) -> torch.Tensor:
        ids = torch.tensor([[*prompt_ids, *output_ids]], dtype=torch.long, device=logits.device)
        fused: torch.Tensor = self.processor(ids, logits[None, :].float())[0]
        return fused.to(logits.dtype)


class FusionVllmLogitsProcessor(AdapterLogitsProcessor):
    """vLLM V1 logits processor running Dynamic Logits Fusion per request (see the module docstring)."""

    def __init__(self, vllm_config: Any, device: torch.device, is_pin_memory: bool) -> None:
        super().__init__(vllm_config, device, is_pin_memory)
        extra = getattr(vllm_config, "additional_config", None) or {}
        config = extra.get(CONFIG_KEY) if isinstance(extra, dict) else None
        if not config:
            raise ValueError(
                f"FusionVllmLogitsProcessor needs additional_config[{CONFIG_KEY!r}]; build the engine arguments with "
                "malot_fusion.vllm_fusion.fusion_engine_args(experts, base)"
            )
        import importlib

        tf: Any = importlib.import_module("transformers")
        dtype = getattr(getattr(vllm_config, "model_config", None), "dtype", None)

        def load(name: str) -> Any:
            model = tf.AutoModelForCausalLM.from_pretrained(
                name, dtype=dtype if isinstance(dtype, torch.dtype) else None
            )
            return model.to(device).eval()

        self.experts = [load(name) for name in config["experts"]]
        self.base = load(config["base"])
        self.lower = float(config.get("lower", 0.0))
        self.upper = float(config.get("upper", 2.0))
        self.objective = config.get("objective", "marginal")
        self.record_path = Path(config["record_path"]) if config.get("record_path") else None
        if self.record_path is not None:
            self.record_path.parent.mkdir(parents=True, exist_ok=True)
        self.steps: list[tuple[int, FusionStep]] = []
        self._lock = threading.Lock()
        self._next_request = 0

    def is_argmax_invariant(self) -> bool:
        """Fusion changes which token is most likely."""
        return False

    def new_req_logits_processor(self, params: Any) -> Any:
        """A fresh per-request fusion state, unless the request opts out (``extra_args={"malot_fusion": False}``)."""
        extra = getattr(params, "extra_args", None) or {}
        if extra.get(CONFIG_KEY) is False:
            return None
        with self._lock:
            request = self._next_request
            self._next_request += 1
        return _RequestFusion(self, request)

    def record(self, request: int, step: FusionStep) -> None:
        """Keep (and optionally append to ``record_path``) one step of one request."""
        self.steps.append((request, step))
        if self.record_path is not None:
            line = {
                "pid": os.getpid(),
                "processor": id(self),
                "request": request,
                "step": step.step,
                "weights": step.weights[0],
                "target_kl": step.target_kl[0],
            }
            with self.record_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(line) + "\n")
