"""Tool calling in the LLM backends, and the agent loop on real ones: a real vLLM CPU server
(``--enable-auto-tool-choice --tool-call-parser hermes``) and transformers, both serving the tiny random Llama.

A random model writes nothing sensible, so these tests force calls: ``tool_choice`` ``required`` or named makes vLLM
constrain the output to the tool's schema, which the loop must parse and execute.
"""

from __future__ import annotations

import json

import pytest

from malot.agents import ToolAgent
from malot.llm import ChatMessage, GenerationRequest, SamplingParams, load_llm
from malot.llm.hf_backend import TransformersLLM
from malot.llm.tool_format import call_prefill, parse_tool_calls, render_chat, required_call_schema
from malot.testing.vllm_server import LocalVllmServer
from malot.tools import RegistrySource
from tests.agents import tool_fixtures

PICK = RegistrySource(tool_fixtures.REGISTRY, names=["pick"], name="fixtures")
PICK_SCHEMA = tool_fixtures.REGISTRY.openai_tools(["pick"])
ASK = [ChatMessage(role="user", content="Pick a color.")]


def test_tool_call_blocks_are_parsed_including_broken_and_unclosed_ones() -> None:
    text = (
        'Let me check.\n<tool_call>\n{"name": "pick", "arguments": {"color": "red"}}\n</tool_call>\n'
        '<tool_call>{"name": "add", "arguments": {"a": 1,</tool_call><tool_call>{"name": "pick", "arguments": {}}'
    )
    content, calls = parse_tool_calls(text)
    assert content == "Let me check."
    assert [c.name for c in calls] == ["pick", "add", "pick"]
    assert json.loads(calls[0].arguments) == {"color": "red"}
    assert calls[1].arguments.startswith('{"name": "add"')  # not JSON: kept raw so the model sees its mistake
    assert json.loads(calls[2].arguments) == {}
    assert parse_tool_calls("no calls here") == ("no calls here", [])


def test_transformers_keeps_one_call_without_parallel_calls() -> None:
    from malot.llm import Completion
    from malot.llm.hf_backend import _with_tool_calls

    two = Completion(text='pick", "arguments": {}}</tool_call><tool_call>{"name": "pick", "arguments": {}}')
    prefill = call_prefill("required", PICK_SCHEMA)
    assert [c.name for c in _with_tool_calls(two, prefill).tool_calls] == ["pick", "pick"]
    assert [c.name for c in _with_tool_calls(two, prefill, parallel=False).tool_calls] == ["pick"]


def test_required_and_named_choices_become_prefills_and_schemas() -> None:
    assert call_prefill("auto", PICK_SCHEMA) == ""
    assert call_prefill("pick", PICK_SCHEMA).endswith('{"name": "pick", "arguments": ')
    named = required_call_schema(PICK_SCHEMA, "pick")
    assert named is not None and named["properties"]["color"]["enum"] == ["red", "green"]
    required = required_call_schema(PICK_SCHEMA, "required")
    assert required is not None and required["type"] == "array"


def test_a_template_without_tools_gets_them_in_a_system_turn(hf_llama: TransformersLLM) -> None:
    history = [
        *ASK,
        ChatMessage(
            role="assistant",
            content="",
            tool_calls=(tool_fixtures_call(),),
        ),
        ChatMessage(role="tool", content='{"result": "picked red"}', tool_call_id="c1", name="pick"),
    ]
    text = render_chat(hf_llama.tokenizer, history, PICK_SCHEMA, "pick")
    assert "<tools>" in text and '"name": "pick"' in text
    assert "<tool_response>" in text and "picked red" in text
    assert text.endswith('<tool_call>\n{"name": "pick", "arguments": ')


def tool_fixtures_call() -> object:
    from malot.llm import ToolCall

    return ToolCall(id="c1", name="pick", arguments='{"color": "red"}')


async def test_transformers_backend_returns_parsed_calls_and_the_loop_runs_them(hf_llama: TransformersLLM) -> None:
    params = SamplingParams(temperature=0.0, max_tokens=12)
    (result,) = await hf_llama.generate(
        [GenerationRequest(prompt=ASK, params=params, tools=PICK_SCHEMA, tool_choice="pick")]
    )
    (completion,) = result.completions
    assert hf_llama.capabilities.tool_calls
    assert [c.name for c in completion.tool_calls] == ["pick"]  # the pre-filled call, arguments as the model wrote
    outcome = await ToolAgent(hf_llama, PICK, tool_choice="pick", max_steps=2, sampling=params).run("Pick a color.")
    first = outcome.tool_calls[0]
    assert first.tool == "pick"
    # a random model's arguments are rarely valid: either way the loop answered the call and asked the model again
    assert first.error_kind in (None, "invalid_json", "invalid_arguments")
    assert outcome.turns == 2 and any(m.role == "tool" for m in outcome.messages)


@pytest.mark.slow
async def test_a_real_vllm_server_constrains_required_and_named_calls(vllm_server: LocalVllmServer) -> None:
    async with load_llm(vllm_server.model_string) as llm:
        params = SamplingParams(temperature=1.0, max_tokens=48, seed=1)
        required, named = await llm.generate(
            [
                GenerationRequest(
                    prompt=ASK, params=params, tools=PICK_SCHEMA, tool_choice="required", parallel_tool_calls=False
                ),
                GenerationRequest(prompt=ASK, params=params, tools=PICK_SCHEMA, tool_choice="pick"),
            ]
        )
        for result in (required, named):
            (call,) = result.completions[0].tool_calls
            assert call.name == "pick" and call.id
            assert json.loads(call.arguments)["color"] in ("red", "green")
        (auto,) = await llm.generate([GenerationRequest(prompt=ASK, params=params, tools=PICK_SCHEMA)])
        assert auto.completions[0].tool_calls == [] or auto.completions[0].tool_calls[0].name == "pick"


@pytest.mark.slow
async def test_the_loop_executes_a_real_servers_tool_calls(vllm_server: LocalVllmServer) -> None:
    async with load_llm(vllm_server.model_string) as llm:
        params = SamplingParams(temperature=1.0, max_tokens=48, seed=2)
        agent = ToolAgent(llm, PICK, tool_choice="required", parallel_tool_calls=False, max_steps=2, sampling=params)
        outcome = await agent.run("Pick a color.")
    (record,) = outcome.tool_calls
    assert record.tool == "pick" and record.error is None and record.source == "fixtures"
    results = [json.loads(m.content) for m in outcome.messages if m.role == "tool"]
    assert results[0]["result"] in ("picked red", "picked green")
    assert outcome.status == "answered" and outcome.turns == 2
