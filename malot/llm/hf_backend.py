"""The transformers backend: local CPU/GPU generation with ``AutoModelForCausalLM``.

What it does: batched sampling (requests with equal sampling parameters and processors go to ``generate`` together;
``n`` samples are rows of the batch), greedy decoding at temperature 0, stop strings, sampled-token log-probs,
prompt scoring (``score_continuation``: log-probs of a given continuation in one forward pass), chat templates,
CodeGen2 infilling (see :mod:`malot.llm.infill`), and logits processors.

Logits processors (the hook the fusion plugin builds on)
--------------------------------------------------------
A logits processor is any callable ``processor(input_ids, scores) -> scores`` with the contract of Hugging Face's
``LogitsProcessor``: ``input_ids`` is the ``(rows, seq_len)`` LongTensor of tokens so far (left-padded prompt plus
generated tokens), ``scores`` the ``(rows, vocab)`` float tensor of next-token logits of this model; it returns the
new scores. Each row is one sample (a request with ``n=4`` has four rows). There are two ways to pass them:

* per backend: ``TransformersLLM(model, logits_processors=[p])`` or ``load_llm(model, backend="hf",
  logits_processors=[p])``; they apply to every sampling request;
* per request: ``GenerationRequest(prompt=..., logits_processors=[p])``; they run after the backend's.

Processors run before temperature and top-p are applied, and only while sampling (not for ``score_continuation``).
Sampled-token ``logprobs`` are those of the model's raw distribution, before processors and temperature. The loaded
``model`` and ``tokenizer`` are public attributes (after :meth:`TransformersLLM.load`), so a processor can run a
second model on the same ``input_ids``.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

from malot.config import LLMSettings
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
    truncate_at_stop,
)
from malot.llm.infill import CODEGEN2, cut_infill_output, trim_infill_ids
from malot.llm.tool_format import call_prefill, parse_tool_calls, render_chat

__all__ = ["TransformersLLM"]


class TransformersLLM(BaseLLM):
    """Generate with a local transformers causal LM (CPU or GPU), loaded on first use or in ``async with``.

    ``device``: ``auto`` (CUDA if available, else CPU), ``cpu``, ``cuda``, ``cuda:1``...; ``dtype``: ``auto``
    (float32 on CPU, the checkpoint's dtype on GPU) or a torch dtype name. ``max_batch_size`` bounds the rows
    (prompts x samples) of one ``generate`` call. ``logits_processors``: see the module docstring.
    """

    def __init__(
        self,
        model: str | Path,
        *,
        device: str = "auto",
        dtype: str = "auto",
        logits_processors: Sequence[Any] = (),
        max_batch_size: int = 32,
        trust_remote_code: bool = False,
    ) -> None:
        self.model_name = str(model)
        self.device_name = device
        self.dtype_name = dtype
        self.logits_processors: list[Any] = list(logits_processors)
        self.max_batch_size = max_batch_size
        self.trust_remote_code = trust_remote_code
        self.model: Any = None
        self.tokenizer: Any = None
        self.max_context: int | None = None
        self.device = "cpu"  # resolved from ``device`` when the model loads
        self._lock = asyncio.Lock()
        self._load_lock = threading.Lock()
        self._active: threading.Event | None = None  # the cancel flag of the generation now running
        self._capabilities = Capabilities(
            backend="transformers", prompt_logprobs=True, logits_processors=True, infill=False
        )

    @classmethod
    def from_settings(cls, model: str, settings: LLMSettings, **options: Any) -> TransformersLLM:
        """Build from :class:`LLMSettings` (``device``, ``dtype``) plus constructor options."""
        options.setdefault("device", settings.device)
        options.setdefault("dtype", settings.dtype)
        return cls(model, **options)

    async def __aenter__(self) -> Self:
        await self.load()
        return self

    async def load(self) -> None:
        """Load the model and tokenizer (in a worker thread) if not loaded yet; sets the capabilities."""
        if self.model is None:
            await asyncio.to_thread(self.load_blocking)

    def load_blocking(self) -> None:
        """Load the model and tokenizer in the calling thread (what :meth:`load` runs in a worker thread)."""
        with self._load_lock:
            if self.model is not None:
                return
            try:
                import torch

                tf: Any = importlib.import_module("transformers")  # typed loosely: its hints are partial
            except ImportError as exc:
                raise BackendUnavailableError(
                    f"the transformers backend needs torch and transformers: {exc}", hint="pip install 'malot[hf]'"
                ) from None
            device = self.device_name
            if device == "auto":
                device = "cuda" if torch.cuda.is_available() else "cpu"
            if self.dtype_name == "auto":
                dtype: Any = torch.float32 if device == "cpu" else "auto"
            else:
                dtype = getattr(torch, self.dtype_name)
            try:
                tokenizer = tf.AutoTokenizer.from_pretrained(self.model_name, trust_remote_code=self.trust_remote_code)
                model = tf.AutoModelForCausalLM.from_pretrained(
                    self.model_name, dtype=dtype, trust_remote_code=self.trust_remote_code
                )
            except (OSError, ValueError) as exc:
                raise LLMError(
                    f"transformers could not load model {self.model_name!r}: {exc}",
                    hint="pass a local model folder (or a hub id with network access and HF_HUB_OFFLINE unset)",
                ) from None
            model.to(device)
            model.eval()
            if tokenizer.pad_token_id is None:
                tokenizer.pad_token = tokenizer.eos_token
            self.tokenizer = tokenizer
            self.model = model
            self.device = device
            config = model.config
            self.max_context = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
            vocab = tokenizer.get_vocab()
            has_infill = all(token in vocab for token in CODEGEN2.sentinels)
            self._capabilities = Capabilities(
                backend="transformers",
                chat=bool(getattr(tokenizer, "chat_template", None)),
                tool_calls=bool(getattr(tokenizer, "chat_template", None)),
                infill=has_infill,
                prompt_logprobs=True,
                logprobs=True,
                logits_processors=True,
                streaming=False,
                max_context=self.max_context,
                notes=(f"model {self.model_name} on {device}",),
            )

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Load on first use, then check capabilities and answer (see :meth:`BaseLLM.generate`)."""
        await self.load()
        return await super().generate(requests)

    async def _generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        async with self._lock:  # one generation at a time owns the model
            cancel = threading.Event()
            self._active = cancel
            work = asyncio.ensure_future(asyncio.to_thread(self._generate_sync, requests, cancel))
            try:
                return await asyncio.shield(work)
            except asyncio.CancelledError:
                cancel.set()  # the running generate() stops at its next token ...
                await asyncio.wait({work})  # ... and the model is free again before the lock is released
                if not work.cancelled():
                    work.exception()  # retrieved: the cancellation is what the caller sees
                raise
            finally:
                self._active = None

    # ---- synchronous work, run in a worker thread -------------------------------------------------------------

    def _generate_sync(self, requests: list[GenerationRequest], cancel: threading.Event) -> list[GenerationResult]:
        results: list[GenerationResult | None] = [None] * len(requests)
        scoring = [i for i, r in enumerate(requests) if r.score_continuation is not None]
        for start in range(0, len(scoring), self.max_batch_size):
            chunk = scoring[start : start + self.max_batch_size]
            for i, result in zip(chunk, self._score_batch([requests[i] for i in chunk]), strict=True):
                results[i] = result
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, r in enumerate(requests):
            if r.score_continuation is None:
                key = (r.kind == "infill", r.params.model_dump_json(), tuple(id(p) for p in r.logits_processors))
                groups.setdefault(key, []).append(i)
        for indices in groups.values():
            per_call = max(1, self.max_batch_size // requests[indices[0]].params.n)
            for start in range(0, len(indices), per_call):
                chunk = indices[start : start + per_call]
                for i, result in zip(chunk, self._sample_batch([requests[i] for i in chunk], cancel), strict=True):
                    results[i] = result
        return [r for r in results if r is not None]

    def _render(
        self, prompt: str | list[ChatMessage], tools: Sequence[dict[str, Any]] = (), tool_choice: str = "auto"
    ) -> list[int]:
        if isinstance(prompt, str):
            ids: list[int] = self.tokenizer(prompt)["input_ids"]
            return ids
        text = render_chat(self.tokenizer, prompt, tools, tool_choice)
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids

    def _infill_ids(self, prompt: InfillPrompt, max_tokens: int) -> list[int]:
        tok = self.tokenizer
        prefix = tok(prompt.prefix, add_special_tokens=False)["input_ids"]
        suffix = tok(prompt.suffix, add_special_tokens=False)["input_ids"]
        mask, eot, sep = (tok.convert_tokens_to_ids(t) for t in (CODEGEN2.mask, CODEGEN2.eot, CODEGEN2.sep))
        budget = (self.max_context or 1 << 30) - max_tokens - 4
        prefix, suffix = trim_infill_ids(prefix, suffix, budget)
        return [*prefix, mask, *suffix, eot, sep, mask]

    def _check_length(self, n_prompt: int, max_tokens: int) -> None:
        if self.max_context is not None and n_prompt + max_tokens > self.max_context:
            raise LLMError(
                f"prompt of {n_prompt} tokens plus max_tokens={max_tokens} exceeds the context of "
                f"{self.max_context} tokens of {self.model_name}",
                hint="shorten the prompt or lower max_tokens",
            )

    def _score_batch(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        import torch

        rows: list[tuple[list[int], list[int]]] = []
        for r in requests:
            assert r.score_continuation is not None and not isinstance(r.prompt, InfillPrompt)
            prompt_ids = self._render(r.prompt)
            cont_ids = self.tokenizer(r.score_continuation, add_special_tokens=False)["input_ids"]
            if not prompt_ids or not cont_ids:
                raise LLMError("prompt scoring needs a non-empty prompt and continuation")
            self._check_length(len(prompt_ids) + len(cont_ids), 0)
            rows.append((prompt_ids, cont_ids))
        width = max(len(p) + len(c) for p, c in rows)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for k, (p, c) in enumerate(rows):
            ids[k, : len(p) + len(c)] = torch.tensor(p + c)
            mask[k, : len(p) + len(c)] = 1
        with torch.inference_mode():
            logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
            logprobs = torch.log_softmax(logits.float(), dim=-1)
        out = []
        for k, (p, c) in enumerate(rows):
            positions = torch.arange(len(p) - 1, len(p) + len(c) - 1)
            chosen = logprobs[k, positions, torch.tensor(c)]
            out.append(GenerationResult(prompt_tokens=len(p), continuation_logprobs=chosen.tolist()))
        return out

    def _sample_batch(self, requests: list[GenerationRequest], cancel: threading.Event) -> list[GenerationResult]:
        import torch
        from transformers import LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

        params = requests[0].params
        infill = isinstance(requests[0].prompt, InfillPrompt)
        tok = self.tokenizer
        prompts: list[list[int]] = []
        for r in requests:
            if isinstance(r.prompt, InfillPrompt):
                ids = self._infill_ids(r.prompt, params.max_tokens)
            else:
                ids = self._render(r.prompt, r.tools, r.tool_choice)
            self._check_length(len(ids), params.max_tokens)
            prompts.append(ids)
        rows = [p for p in prompts for _ in range(params.n)]
        width = max(len(p) for p in rows)
        pad = tok.pad_token_id
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for k, p in enumerate(rows):  # left padding, as decoder-only generation needs
            input_ids[k, width - len(p) :] = torch.tensor(p)
            attention[k, width - len(p) :] = 1
        eos_ids = [tok.eos_token_id]
        if infill:
            eos_ids = [tok.convert_tokens_to_ids(CODEGEN2.end), tok.convert_tokens_to_ids(CODEGEN2.eot)]

        class _Cancelled(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full((input_ids.shape[0],), cancel.is_set(), dtype=torch.bool, device=input_ids.device)

        processors = LogitsProcessorList([*self.logits_processors, *requests[0].logits_processors])
        kwargs: dict[str, Any] = {}
        if params.temperature > 0:
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=0)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if params.stop and not infill:
            kwargs.update(stop_strings=list(params.stop), tokenizer=tok)
        if params.seed is not None:
            torch.manual_seed(params.seed)
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids.to(self.device),
                attention_mask=attention.to(self.device),
                max_new_tokens=params.max_tokens,
                eos_token_id=eos_ids,
                pad_token_id=eos_ids[0],
                logits_processor=processors,
                stopping_criteria=StoppingCriteriaList([_Cancelled()]),
                return_dict_in_generate=True,
                output_logits=params.logprobs is not None,
                **kwargs,
            )
        if cancel.is_set():
            raise LLMError("generation was cancelled")
        new = out.sequences[:, width:].tolist()
        step_logprobs = None
        if params.logprobs is not None:
            step_logprobs = torch.log_softmax(torch.stack(out.logits, dim=1).float(), dim=-1)
        completions: list[Completion] = []
        for k, ids in enumerate(new):
            end = next((t for t, token in enumerate(ids) if token in eos_ids), None)
            kept = ids if end is None else ids[:end]
            count = len(ids) if end is None else end + 1
            raw = tok.decode(kept + ([ids[end]] if infill and end is not None else []), skip_special_tokens=False)
            finish: FinishReason
            if infill:
                text, done = cut_infill_output(raw)
                finish = "stop" if done else "unfinished"
            else:
                text = tok.decode(kept, skip_special_tokens=True)
                text, stopped = truncate_at_stop(text, params.stop)
                if stopped:
                    finish = "stop"
                    count = self._tokens_until(kept, text)
                else:
                    finish = "length" if end is None and len(ids) >= params.max_tokens else "stop"
            logprobs = None
            if step_logprobs is not None:
                logprobs = [float(step_logprobs[k, t, ids[t]]) for t in range(min(count, len(ids)))]
            completions.append(Completion(text=text, finish_reason=finish, tokens=count, logprobs=logprobs))
        results = []
        for j, prompt in enumerate(prompts):
            chunk = completions[j * params.n : (j + 1) * params.n]
            if requests[j].tools and requests[j].tool_choice != "none":
                prefill = call_prefill(requests[j].tool_choice, requests[j].tools)
                chunk = [_with_tool_calls(c, prefill, requests[j].parallel_tool_calls) for c in chunk]
            results.append(GenerationResult(completions=chunk, prompt_tokens=len(prompt)))
        return results

    def _tokens_until(self, ids: list[int], text: str) -> int:
        """How many of ``ids`` it took to produce ``text`` plus the stop string (the tokens actually consumed)."""
        for t in range(1, len(ids) + 1):
            if len(self.tokenizer.decode(ids[:t], skip_special_tokens=True)) > len(text):
                return t
        return len(ids)

    async def aclose(self) -> None:
        """Stop a running generation, then drop the model and tokenizer (freed when nothing else holds them)."""
        if self._active is not None:
            self._active.set()
        async with self._lock:
            self.model = None
            self.tokenizer = None


def _with_tool_calls(completion: Completion, prefill: str, parallel: bool = True) -> Completion:
    """The completion with its ``<tool_call>`` blocks (the pre-filled opening included) parsed into tool calls
    (only the first one unless ``parallel``)."""
    content, calls = parse_tool_calls(prefill + completion.text)
    calls = calls if parallel else calls[:1]
    if not calls:
        return completion
    return completion.model_copy(update={"text": content, "tool_calls": calls})
