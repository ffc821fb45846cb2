"""The scripted model: list, mapping and function scripts, stop strings, recording, script files, capabilities."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from malot.errors import CapabilityError, ConfigError, LLMError
from malot.llm import (
    LLM,
    ChatMessage,
    GenerationRequest,
    InfillPrompt,
    SamplingParams,
    ScriptedLLM,
    load_llm,
)


async def test_list_script_hands_out_responses_in_order_and_records() -> None:
    async with ScriptedLLM(["a", "b", "c"]) as llm:
        assert isinstance(llm, LLM)
        (r1,) = await llm.generate([GenerationRequest(prompt="p1", params=SamplingParams(n=2))])
        (r2,) = await llm.generate([GenerationRequest(prompt="p2")])
        assert r1.texts == ["a", "b"]
        assert r2.texts == ["c"]
        assert llm.prompts == ["p1", "p2"]
        assert len(llm.calls) == 2
        with pytest.raises(LLMError, match="ran out of responses"):
            await llm.generate([GenerationRequest(prompt="p3")])
    assert llm.closed


async def test_cycle_and_repeat_last() -> None:
    cyc = ScriptedLLM(["x", "y"], on_exhausted="cycle")
    assert await cyc.complete("q", n=5) == ["x", "y", "x", "y", "x"]
    rep = ScriptedLLM(["x", "y"], on_exhausted="repeat_last")
    assert await rep.complete("q", n=4) == ["x", "y", "y", "y"]


async def test_mapping_matches_first_substring_and_default() -> None:
    llm = ScriptedLLM({"theorem foo": ["proof1", "proof2"], "hello": "hi"}, default="?")
    assert await llm.complete("prove theorem foo please", n=2) == ["proof1", "proof2"]
    assert await llm.complete("hello world") == ["hi"]
    assert await llm.complete("nothing matches") == ["?"]
    chat = [ChatMessage(role="system", content="sys"), ChatMessage(role="user", content="say hello")]
    assert await llm.complete(chat) == ["hi"]
    strict = ScriptedLLM({"a": "b"})
    with pytest.raises(LLMError, match="no response for prompt"):
        await strict.complete("zzz")


async def test_function_script_and_stop_strings() -> None:
    def answer(request: GenerationRequest) -> str:
        return f"echo {request.prompt}\nmore"

    llm = ScriptedLLM(answer)
    (result,) = await llm.generate([GenerationRequest(prompt="x", params=SamplingParams(n=3, stop=["\n"]))])
    assert result.texts == ["echo x"] * 3
    assert all(c.finish_reason == "stop" and c.tokens == 2 for c in result.completions)


async def test_infill_prompt_text_and_dict_responses() -> None:
    llm = ScriptedLLM([{"text": "body", "finish_reason": "unfinished"}])
    (result,) = await llm.generate([GenerationRequest(prompt=InfillPrompt(prefix="def f():", suffix="return 1"))])
    assert result.completions[0].finish_reason == "unfinished"
    assert llm.prompts == ["def f():return 1"]


async def test_scoring_needs_a_scorer() -> None:
    llm = ScriptedLLM(["a"])
    with pytest.raises(CapabilityError, match="prompt log-probabilities"):
        await llm.score("prompt", "continuation")
    scored = ScriptedLLM(["a"], scorer=lambda r: [-1.0, -0.5])
    assert await scored.score("prompt", "cont") == pytest.approx(-1.5)
    assert scored.requests[0].score_continuation == "cont"


async def test_script_files(tmp_path: Path) -> None:
    lines = tmp_path / "answers.jsonl"
    lines.write_text('"first"\n{"text": "second"}\n\n', encoding="utf-8")
    llm = load_llm(f"script:{lines}")
    (result,) = await llm.generate([GenerationRequest(prompt="q", params=SamplingParams(n=2))])
    assert result.texts == ["first", "second"]
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"foo": ["A", "B"], "bar": "C"}), encoding="utf-8")
    mapped = load_llm(f"script:{mapping}")
    assert isinstance(mapped, ScriptedLLM)
    assert await mapped.complete("a bar b") == ["C"]
    assert await mapped.complete("foo", n=2) == ["A", "B"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="line 1 is not JSON"):
        load_llm(f"script:{bad}")
    with pytest.raises(ConfigError, match="does not exist"):
        load_llm(f"script:{tmp_path / 'missing.jsonl'}")
