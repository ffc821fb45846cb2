"""``malot llm``: talk to a model through malot's LLM backends (generate, score, capabilities).

Useful to check a backend before a long run: ``malot llm generate --model http://127.0.0.1:8000/v1#m "theorem"``,
``--model script:answers.jsonl``, or a local folder with ``--backend hf`` / ``--backend vllm``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from pathlib import Path
from typing import Any

import click

from malot.cli.common import console, echo_json, load_cli_settings
from malot.llm import ChatMessage, GenerationRequest, InfillPrompt, SamplingParams, load_llm
from malot.llm.base import LLM


@click.group("llm")
def command() -> None:
    """Generate with, score with, or inspect an LLM backend."""


_model_option = click.option(
    "--model", "-m", help="Model: http(s)://host:port/v1#name, script:FILE, or a local folder / hub id."
)
_backend_option = click.option(
    "--backend",
    type=click.Choice(["auto", "vllm", "hf", "openai", "script"]),
    default=None,
    help="How to run a local model (default: llm.backend from config).",
)


def _open(ctx: click.Context, model: str | None, backend: str | None) -> LLM:
    overrides: dict[str, Any] = {"llm.model": model, "llm.backend": backend}
    settings = load_cli_settings(ctx, overrides)
    return load_llm(settings.llm)


@command.command("generate")
@_model_option
@_backend_option
@click.argument("prompt", required=False)
@click.option("-n", "n", type=click.IntRange(1), default=1, show_default=True, help="Samples.")
@click.option("--temperature", type=click.FloatRange(0), default=0.8, show_default=True)
@click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), default=0.95, show_default=True)
@click.option("--max-tokens", type=click.IntRange(1), default=128, show_default=True)
@click.option("--stop", multiple=True, help="Stop string (repeatable).")
@click.option("--seed", type=int, default=None)
@click.option("--logprobs", is_flag=True, help="Report sampled-token log-probs.")
@click.option("--chat", is_flag=True, help="Send PROMPT as a user chat message (the model's chat template).")
@click.option("--system", default=None, help="A system message (implies --chat).")
@click.option("--infill-suffix", default=None, help="Fill in the middle: PROMPT is the prefix, this the suffix.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.pass_context
def generate(
    ctx: click.Context,
    model: str | None,
    backend: str | None,
    prompt: str | None,
    n: int,
    temperature: float,
    top_p: float,
    max_tokens: int,
    stop: tuple[str, ...],
    seed: int | None,
    logprobs: bool,
    chat: bool,
    system: str | None,
    infill_suffix: str | None,
    as_json: bool,
) -> None:
    """Sample completions for PROMPT (read from stdin when omitted or '-')."""
    text = sys.stdin.read() if prompt in (None, "-") else prompt
    assert text is not None
    params = SamplingParams(
        n=n,
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_tokens,
        stop=list(stop),
        seed=seed,
        logprobs=0 if logprobs else None,
    )
    body: str | list[ChatMessage] | InfillPrompt = text
    if infill_suffix is not None:
        body = InfillPrompt(prefix=text, suffix=infill_suffix)
    elif chat or system is not None:
        messages = [ChatMessage(role="system", content=system)] if system else []
        body = [*messages, ChatMessage(role="user", content=text)]
    request = GenerationRequest(prompt=body, params=params)
    llm = _open(ctx, model, backend)

    async def run() -> Any:
        async with llm:
            return (await llm.generate([request]))[0]

    result = asyncio.run(run())
    if as_json:
        echo_json(result.model_dump(mode="json"))
        return
    for i, c in enumerate(result.completions):
        extra = f", logprob {c.cumulative_logprob:.3f}" if c.cumulative_logprob is not None else ""
        console.rule(f"[bold]sample {i}[/] ({c.tokens} tokens, {c.finish_reason}{extra})")
        console.print(c.text, markup=False, highlight=False)


@command.command("score")
@_model_option
@_backend_option
@click.argument("prompt")
@click.argument("continuation")
@click.option("--json", "as_json", is_flag=True, help="Print per-token log-probs as JSON.")
@click.pass_context
def score(
    ctx: click.Context, model: str | None, backend: str | None, prompt: str, continuation: str, as_json: bool
) -> None:
    """Log-probability of CONTINUATION given PROMPT (backends with prompt log-probs)."""
    llm = _open(ctx, model, backend)

    async def run() -> Any:
        async with llm:
            return (await llm.generate([GenerationRequest(prompt=prompt, score_continuation=continuation)]))[0]

    result = asyncio.run(run())
    if as_json:
        echo_json(result.model_dump(mode="json") | {"total": result.continuation_logprob})
        return
    console.print(f"{result.continuation_logprob:.4f} over {len(result.continuation_logprobs or [])} tokens")


@command.command("capabilities")
@_model_option
@_backend_option
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def capabilities(ctx: click.Context, model: str | None, backend: str | None, as_json: bool) -> None:
    """What the backend for MODEL can do (local models are loaded to find out)."""
    llm = _open(ctx, model, backend)

    async def run() -> Any:
        async with llm:
            return llm.capabilities

    caps = asyncio.run(run())
    data = dataclasses.asdict(caps)
    if as_json:
        echo_json(data)
        return
    for key, value in data.items():
        console.print(f"{key}: {value}", markup=False, highlight=False)


@command.command("convert-codegen")
@click.argument("src", type=click.Path(file_okay=False, path_type=Path))
@click.argument("dst", type=click.Path(path_type=Path))
@click.option(
    "--mp-num",
    type=click.IntRange(1),
    default=None,
    help="Blocks in the fused qkv_proj (default: read from the checkpoint's modeling_codegen.py, else 4).",
)
@click.option("--no-self-check", "skip_check", is_flag=True, help="Skip the logits comparison after converting.")
@click.option("--json", "as_json", is_flag=True, help="Print the conversion manifest as JSON.")
def convert_codegen(src: Path, dst: Path, mp_num: int | None, skip_check: bool, as_json: bool) -> None:
    """Convert the CodeGen / CodeGen2 checkpoint SRC into a GPT-J checkpoint DST (which vLLM serves natively).

    Streams safetensors or pytorch_model*.bin weights tensor by tensor, splits each fused qkv_proj, carries the
    tokenizer (and its infill sentinels) over, checks the logits against transformers' CodeGen, and writes
    malot-conversion.json. DST appears only when everything succeeded.
    """
    from malot.llm.convert.codegen import MANIFEST_NAME, convert_codegen_to_gptj

    manifest = convert_codegen_to_gptj(src, dst, mp_num=mp_num, self_check=not skip_check)
    if as_json:
        echo_json(manifest.model_dump(mode="json"))
        return
    console.print(
        f"wrote {dst} ({manifest.tensors_out} tensors, qkv_proj in {manifest.mp_num} blocks); manifest: "
        f"{dst / MANIFEST_NAME}",
        markup=False,
        highlight=False,
    )
