"""The fused LLM on saved tiny models, and the family's tools through malot's tool registry."""

from __future__ import annotations

from typing import Any

import pytest
from malot_fusion import fused_llm
from malot_fusion.testing import EXPERT_TEXT

from malot.llm.base import GenerationRequest, SamplingParams
from malot.llm.hf_backend import TransformersLLM
from malot.tools import ToolRegistry

PROMPT = EXPERT_TEXT.split(":= by")[0] + ":= by\n"
FAMILY = {"dynamic_logits_fusion", "btm_ensemble", "loki", "binary_pv", "retrieve_coseg", "gpicl", "set2seq"}


async def test_fused_llm_records_per_step_weights_for_every_row(fusion_models: dict[str, Any]) -> None:
    params = SamplingParams(n=2, temperature=0.8, max_tokens=6, seed=3)
    async with fused_llm(fusion_models["large"], [fusion_models["expert"]], fusion_models["base"], device="cpu") as llm:
        assert llm.capabilities.logits_processors
        results, note = await llm.generate_with_trace([GenerationRequest(prompt=PROMPT, params=params)])
        assert len(results[0].completions) == 2
        assert note["fusion_steps"] == max(c.tokens for c in results[0].completions)
        assert note["fusion_experts"] == [str(fusion_models["expert"])]
        for step_weights, targets, fused in zip(
            note["fusion_weights"], note["fusion_target_kl"], note["fusion_fused_kl"], strict=True
        ):
            assert len(step_weights) == 2  # one row per sample
            for (weight,), (target,), shift in zip(step_weights, targets, fused, strict=True):
                assert 0.0 <= weight <= 2.0
                if 0.0 < weight < 2.0:
                    assert shift == pytest.approx(target, rel=1e-3)
        assert llm.pop_trace_note()["fusion_steps"] == 0  # generate_with_trace already took this call's record


async def test_fusion_with_the_expert_equal_to_its_base_is_the_large_model(fusion_models: dict[str, Any]) -> None:
    params = SamplingParams(n=1, temperature=0.0, max_tokens=8)
    request = [GenerationRequest(prompt=PROMPT, params=params)]
    async with TransformersLLM(fusion_models["large"], device="cpu") as plain:
        expected = (await plain.generate(request))[0].texts
    async with fused_llm(fusion_models["large"], fusion_models["base"], fusion_models["base"], device="cpu") as llm:
        got, note = await llm.generate_with_trace(request)
    assert got[0].texts == expected
    assert all(w == [[0.0]] for w in note["fusion_weights"])


def test_register_module_adds_the_whole_family() -> None:
    import malot_fusion.register  # noqa: F401

    from malot.tools import default_registry

    tools = {t.name: t for t in default_registry().list(family="fusion")}
    assert set(tools) == FAMILY
    assert all(t.metadata.paper for t in tools.values())


def test_light_tools_through_a_registry() -> None:
    from malot_fusion.tools import loki_tool, retrieve_coseg_tool

    registry = ToolRegistry()
    registry.register(loki_tool)
    registry.register(retrieve_coseg_tool)
    out = registry.run_sync(
        "loki",
        {
            "probs": [[0.5, 0.5], [1.0, 0.0]],
            "observed": [0, 4],
            "n_labels": 5,
            "edges": [[0, 1], [1, 2], [2, 3], [3, 4]],
        },
    ).model_dump()
    assert out == {"predictions": [2, 0], "argmax": [0, 0]}
    shared = [1.0, 0.0, 0.0]
    items = [[shared, [0.0, 1.0, 0.1]], [[0.0, 0.2, 1.0], shared], [shared, [0.1, -1.0, 0.3]]]
    reco = registry.run_sync(
        "retrieve_coseg",
        {
            "concepts": [[1.0, 0.1, 0.1]],
            "item_embeddings": [[1.0, 0.2, 0.0], [0.9, 0.0, 0.3], [1.0, 0.0, 0.1]],
            "item_features": items,
            "features": [shared, [0.0, 0.0, 1.0]],
            "k": 3,
            "background_threshold": 0.5,
        },
    ).model_dump()
    assert reco["labels"] == [0, -1]
    assert reco["references"][0] == pytest.approx(shared)


def test_dynamic_logits_fusion_tool_on_saved_models(fusion_models: dict[str, Any]) -> None:
    from malot_fusion.tools import FusionInput, dynamic_logits_fusion_tool

    out = dynamic_logits_fusion_tool(
        FusionInput(
            large=str(fusion_models["large"]),
            experts=[str(fusion_models["expert"])],
            base=str(fusion_models["base"]),
            prompt=PROMPT,
            max_tokens=5,
        )
    )
    assert len(out.weights) == 5 and all(0.0 <= w[0] <= 2.0 for w in out.weights)


def test_binary_pv_tool_finds_same_topic_documents() -> None:
    from malot_fusion.tools import BinaryPVInput, binary_pv_tool

    lean = "theorem lemma proof simp ring omega nlinarith tactic goal"
    cook = "flour sugar butter oven bake whisk dough salt pan"
    docs = [" ".join(lean.split()[i % 5 : i % 5 + 5]) for i in range(6)] + [
        " ".join(cook.split()[i % 5 : i % 5 + 5]) for i in range(6)
    ]
    out = binary_pv_tool(BinaryPVInput(documents=docs, queries=["simp ring omega proof"], bits=16, epochs=60, k=3))
    assert len(out.codes) == 12 and all(len(c) == 4 for c in out.codes)
    assert sum(i < 6 for i in out.neighbours[0]) >= 2


def test_training_tools_run_end_to_end() -> None:
    from malot_fusion.tools import GpiclInput, Set2SeqInput, gpicl_tool, set2seq_tool

    icl = gpicl_tool(GpiclInput(dim=4, classes=2, length=8, steps=2))
    assert len(icl.accuracy_by_position) == 8 and all(0.0 <= a <= 1.0 for a in icl.accuracy_by_position)
    sets = set2seq_tool(Set2SeqInput(sets=[[0.9, 0.1, 0.7], [0.2, 0.3]], set_size=3, steps=2, process_steps=2))
    assert len(sets.outputs) == 2
    for values, picked in zip([[0.9, 0.1, 0.7], [0.2, 0.3]], sets.outputs, strict=True):
        assert len(picked) == len(set(picked)) and all(0 <= i < len(values) for i in picked)


def test_btm_tool_decodes_with_posteriors(fusion_models: dict[str, Any]) -> None:
    from malot_fusion.tools import BTMInput, btm_ensemble_tool

    out = btm_ensemble_tool(
        BTMInput(experts=[str(fusion_models["expert"]), str(fusion_models["base"])], prompt=PROMPT, max_tokens=3)
    )
    assert 1 <= len(out.posteriors) <= 3
    assert all(abs(sum(p) - 1.0) < 1e-9 and len(p) == 2 for p in out.posteriors)
    # the expert was fine-tuned on this very prompt: the posterior favours it
    assert out.posteriors[0][0] > 0.5


async def test_batched_prompts_of_different_lengths_fuse_like_single_prompts(fusion_models: dict[str, Any]) -> None:
    params = SamplingParams(n=1, temperature=0.0, max_tokens=6)
    prompts = [PROMPT, "lemma x : 1 + 1 = 2 := by\n"]
    async with fused_llm(fusion_models["large"], [fusion_models["expert"]], fusion_models["base"], device="cpu") as llm:
        batched, note = await llm.generate_with_trace([GenerationRequest(prompt=p, params=params) for p in prompts])
        assert note["fusion_calls"] == 1 and len(note["fusion_weights"][0]) == 2  # one left-padded batch of 2 rows
        for row, prompt in enumerate(prompts):
            single, single_note = await llm.generate_with_trace([GenerationRequest(prompt=prompt, params=params)])
            assert single[0].texts == batched[row].texts
            first_batched = note["fusion_weights"][0][row][0]
            assert single_note["fusion_weights"][0][0][0] == pytest.approx(first_batched, rel=1e-3, abs=1e-4)
