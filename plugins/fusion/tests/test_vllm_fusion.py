"""The vLLM V1 fusion logits processor, driven through vLLM's own batch-update and adapter code (no engine)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import torch
from malot_fusion.fusion_processor import FusionLogitsProcessor


def test_vllm_adapter_fuses_each_request_like_the_hf_processor(fusion_models: dict[str, Any]) -> None:
    from malot_fusion.vllm_fusion import FusionVllmLogitsProcessor, fusion_engine_args
    from transformers import AutoModelForCausalLM
    from vllm import SamplingParams
    from vllm.v1.sample.logits_processor import BatchUpdate

    args = fusion_engine_args([str(fusion_models["expert"])], str(fusion_models["base"]))
    assert args["logits_processors"] == ["malot_fusion.vllm_fusion:FusionVllmLogitsProcessor"]
    # the engine's config object, reduced to the fields the processor reads (a double of vLLM's VllmConfig)
    config = SimpleNamespace(additional_config=args["additional_config"], model_config=None)
    processor = FusionVllmLogitsProcessor(config, torch.device("cpu"), False)
    assert not processor.is_argmax_invariant()

    prompts = [[5, 17, 90, 33], [8, 8, 41]]
    outputs: list[list[int]] = [[], []]
    opted_out = SamplingParams(extra_args={"malot_fusion": False})
    added = [(0, SamplingParams(), prompts[0], outputs[0]), (1, SamplingParams(), prompts[1], outputs[1])]
    processor.update_state(BatchUpdate(batch_size=2, removed=[], added=added, moved=[]))
    processor.update_state(BatchUpdate(batch_size=3, removed=[], added=[(2, opted_out, [3, 4], [])], moved=[]))

    large = AutoModelForCausalLM.from_pretrained(fusion_models["large"]).eval()
    expert = AutoModelForCausalLM.from_pretrained(fusion_models["expert"]).eval()
    base = AutoModelForCausalLM.from_pretrained(fusion_models["base"]).eval()
    for _ in range(3):
        rows = [torch.tensor([p + o]) for p, o in zip(prompts, outputs, strict=True)]
        with torch.no_grad():
            logits = torch.stack([large(r).logits[0, -1] for r in rows] + [torch.zeros(large.config.vocab_size)])
        fused = processor.apply(logits.clone())
        for row in range(2):
            reference = FusionLogitsProcessor([expert], base)(rows[row], logits[row : row + 1].clone())[0]
            torch.testing.assert_close(fused[row], reference, rtol=1e-5, atol=1e-5)
        assert torch.equal(fused[2], torch.zeros(large.config.vocab_size))  # the opted-out request is untouched
        for row in range(2):
            outputs[row].append(int(fused[row].argmax()))  # vLLM appends sampled tokens to the live lists
    assert len(processor.steps) == 6
    assert {request for request, _ in processor.steps} == {0, 1}
    # each request's small models read only the new token per step (their own KV caches)
    request_fusion = processor.req_info[0].func
    assert request_fusion.processor.side_forward_passes == 2 * 3
