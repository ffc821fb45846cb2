"""Coalescing of concurrent LLM calls: sibling attempts' requests go to the backend as one batch.

Each attempt draws one sample, so ``n`` attempts make ``n`` concurrent ``generate`` calls. Engines with continuous
batching (vLLM, servers) batch them anyway; in-process backends that serve one call at a time (transformers) would
run them one after another. :class:`RequestBatcher` collects the calls that arrive within ``window_s`` (by default
the same event-loop turn, which is when sibling attempts start) and sends them as one ``generate`` call, so the
``n`` first-pass continuations of MA-LoT are sampled together, as in the paper's code.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from malot.llm.base import LLM, Capabilities, GenerationRequest, GenerationResult
from malot.resources import AsyncResource

__all__ = ["RequestBatcher"]


class _Batch:
    __slots__ = ("calls", "task")

    def __init__(self) -> None:
        self.calls: list[tuple[list[GenerationRequest], asyncio.Future[list[GenerationResult]]]] = []
        self.task: asyncio.Task[None] | None = None


class RequestBatcher(AsyncResource):
    """Wraps an LLM (and is one); ``generate`` calls made within ``window_s`` of each other share one backend call.

    ``capabilities`` are the wrapped LLM's; :meth:`aclose` cancels running batches but leaves the wrapped LLM to its
    owner. A caller cancelled while its batch runs just drops its results; the batch is cancelled only when every
    caller in it was.
    """

    def __init__(self, llm: LLM, *, window_s: float = 0.0, max_requests: int = 256) -> None:
        self.llm = llm
        self.window_s = window_s
        self.max_requests = max_requests
        self._open: _Batch | None = None
        self._running: set[asyncio.Task[None]] = set()
        self.batches = 0

    @property
    def capabilities(self) -> Capabilities:
        """The wrapped LLM's capabilities."""
        return self.llm.capabilities

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Queue ``requests`` into the open batch and wait for their results."""
        loop = asyncio.get_running_loop()
        batch = self._open
        if batch is None or sum(len(c[0]) for c in batch.calls) + len(requests) > self.max_requests:
            batch = _Batch()
            self._open = batch
            batch.task = loop.create_task(self._flush(batch))
            self._running.add(batch.task)
            batch.task.add_done_callback(self._running.discard)
        future: asyncio.Future[list[GenerationResult]] = loop.create_future()
        batch.calls.append((list(requests), future))
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            if not future.done():
                future.cancel()
            if batch.task is not None and all(f.cancelled() for _, f in batch.calls):
                batch.task.cancel()
            raise

    async def _flush(self, batch: _Batch) -> None:
        if self.window_s > 0:
            await asyncio.sleep(self.window_s)
        else:
            await asyncio.sleep(0)  # let the siblings started in this loop turn add their requests
        if self._open is batch:
            self._open = None
        calls = [c for c in batch.calls if not c[1].cancelled()]
        flat = [r for reqs, _ in calls for r in reqs]
        if not flat:
            return
        self.batches += 1
        try:
            results = await self.llm.generate(flat)
        except BaseException as exc:
            for _, future in calls:
                if not future.done():
                    if isinstance(exc, asyncio.CancelledError):
                        future.cancel()
                    else:
                        future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        start = 0
        for reqs, future in calls:
            part = results[start : start + len(reqs)]
            start += len(reqs)
            if not future.done():
                future.set_result(list(part))

    async def aclose(self) -> None:
        """Cancel batches still running (their callers are gone); the wrapped LLM is closed by its owner."""
        for task in list(self._running):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
