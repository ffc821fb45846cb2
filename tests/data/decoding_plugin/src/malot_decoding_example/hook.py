"""The example hook: ``--example-note TEXT`` counts generation calls and records them in the trace."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from malot.provers.decoding import DecodingContext


class CountingLLM:
    """Wraps the model and counts its ``generate`` calls."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self.calls = 0

    @property
    def capabilities(self) -> Any:
        return self.llm.capabilities

    async def generate(self, requests: Sequence[Any]) -> list[Any]:
        self.calls += 1
        return list(await self.llm.generate(requests))

    async def aclose(self) -> None:
        pass

    async def __aenter__(self) -> CountingLLM:
        return self

    async def __aexit__(self, *exc: object) -> None:
        pass


class NoteRun:
    """Builds the configured model, wraps it to count calls, and writes the count into the trace when done."""

    def __init__(self, text: str, context: DecodingContext) -> None:
        self.text = text
        self.context = context
        self.inner: Any = None
        self.counting: CountingLLM | None = None

    async def adjust_llm(self, llm: Any) -> Any:
        if llm is None:
            from malot.llm import load_llm

            self.inner = load_llm(self.context.settings.llm)
            llm = await self.inner.__aenter__()
        self.counting = CountingLLM(llm)
        return self.counting

    def logits_processors(self) -> Sequence[Any]:
        return ()

    async def aclose(self) -> None:
        calls = self.counting.calls if self.counting is not None else 0
        if self.context.trace is not None:
            event = {"type": "note", "group_id": self.context.group_id, "time": time.time(),
                     "data": {"example_note": self.text, "generations": calls}}  # fmt: skip
            _append(Path(self.context.trace), event)
        if self.inner is not None:
            await self.inner.aclose()


def _append(path: Path, event: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(event) + "\n")


class NoteHook:
    """Adds ``--example-note`` to ``malot prove``."""

    name = "example"

    def options(self) -> Sequence[click.Option]:
        return [click.Option(["--example-note", "example_note"], help="Record TEXT and the generation count.")]

    def start(self, values: Mapping[str, Any], context: DecodingContext) -> NoteRun | None:
        text = values.get("example_note")
        return NoteRun(str(text), context) if text else None


hook = NoteHook()
