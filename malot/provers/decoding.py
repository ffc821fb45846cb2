"""Decoding hooks: plugins that change how the prover's model decodes, found through the ``malot.decoding`` group.

A plugin distribution declares, in its ``pyproject.toml``::

    [project.entry-points."malot.decoding"]
    fusion = "malot_fusion.decoding:hook"

The value names a :class:`DecodingHook` (or a callable without arguments returning one). A hook contributes click
options to ``malot prove`` and, when the user gives them, starts a :class:`DecodingRun` for that run: the run may
replace or wrap the model (:meth:`DecodingRun.adjust_llm`) and add logits processors to every request
(:meth:`DecodingRun.logits_processors`); it is closed after the proof, with the trace file and the proof's group id
in its :class:`DecodingContext` (to record what it did). The core never names a plugin: it only knows this group.

Discovery is lazy (the group is read when ``malot prove`` is first imported) and forgiving: a hook that fails to
import, or whose options clash with the command's, is reported as ``failed`` (:func:`decoding_hook_statuses`,
``malot doctor``) and the others still load. ``MALOT_PLUGINS`` (the tool plugins' allow-list, by entry-point name)
also chooses which decoding hooks load.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from malot.config import Settings
from malot.errors import ConfigError
from malot.llm.base import Capabilities, GenerationRequest, GenerationResult, LogitsProcessor
from malot.resources import AsyncResource

if TYPE_CHECKING:
    import click

    from malot.llm.base import LLM

__all__ = [
    "ENTRY_POINT_GROUP",
    "DecodingContext",
    "DecodingHook",
    "DecodingRun",
    "DecodingSession",
    "HookStatus",
    "LogitsProcessorLLM",
    "add_hook_options",
    "decoding_hook_statuses",
    "load_decoding_hooks",
    "reset_decoding_hooks",
    "start_decoding_runs",
]

ENTRY_POINT_GROUP = "malot.decoding"


@dataclass(frozen=True, slots=True)
class DecodingContext:
    """What a hook knows about the run it decodes for: the settings, the trace file and the proof's group id."""

    settings: Settings
    trace: Path | None
    group_id: str


@runtime_checkable
class DecodingRun(Protocol):
    """One run's decoding change, started by a hook from the user's option values."""

    async def adjust_llm(self, llm: LLM | None) -> LLM | None:
        """The model the prover should use: ``llm`` is the choice so far (``None``: built from the settings).

        Return ``llm`` unchanged to keep it, a wrapper of it, or a new model (which this run then owns).
        """
        ...

    def logits_processors(self) -> Sequence[LogitsProcessor]:
        """Processors added to every generation request of the run (in-process backends only)."""
        ...

    async def aclose(self) -> None:
        """Finish: record what the run did (e.g. a trace note) and release what :meth:`adjust_llm` built."""
        ...


@runtime_checkable
class DecodingHook(Protocol):
    """A decoding plugin: a name, the click options it adds to ``malot prove``, and how it starts a run."""

    @property
    def name(self) -> str:
        """A short name (shown in reports)."""
        ...

    def options(self) -> Sequence[click.Option]:
        """The click options this hook adds (their parameter names must be unique across the command)."""
        ...

    def start(self, values: Mapping[str, Any], context: DecodingContext) -> DecodingRun | None:
        """A run when the user gave this hook's options (``values`` maps parameter names to values), else ``None``.

        Raise :class:`~malot.errors.ConfigError` for option values that do not go together.
        """
        ...


class HookStatus(BaseModel):
    """What happened to one ``malot.decoding`` entry point: loaded (with its options), failed or disabled."""

    model_config = ConfigDict(frozen=True)

    name: str
    value: str
    state: Literal["loaded", "failed", "disabled"]
    options: tuple[str, ...] = ()
    error: str = ""


_HOOKS: list[tuple[DecodingHook, HookStatus]] | None = None
_STATUSES: list[HookStatus] = []


def _allow_list() -> list[str] | None:
    raw = os.environ.get("MALOT_PLUGINS")
    if raw is None:
        return None
    return [part.strip() for part in raw.split(",") if part.strip()]


def load_decoding_hooks(
    entry_points: Iterable[importlib.metadata.EntryPoint] | None = None, *, reserved: Iterable[str] = ()
) -> list[DecodingHook]:
    """Load every allowed ``malot.decoding`` hook once (later calls return the same hooks); never raises.

    ``reserved`` holds option names and parameter names already taken (a hook that reuses one is ``failed``).
    """
    global _HOOKS
    if _HOOKS is not None and entry_points is None:
        return [hook for hook, _ in _HOOKS]
    taken = set(reserved)
    allowed = _allow_list()
    eps = list(entry_points) if entry_points is not None else _discover()
    loaded: list[tuple[DecodingHook, HookStatus]] = []
    statuses: list[HookStatus] = []
    for ep in eps:
        if allowed is not None and ep.name not in allowed:
            statuses.append(HookStatus(name=ep.name, value=ep.value, state="disabled"))
            continue
        try:
            hook = _load_one(ep)
            options = list(hook.options())
            names = [str(o.name) for o in options] + [flag for o in options for flag in o.opts + o.secondary_opts]
            clash = sorted(taken.intersection(names))
            if clash:
                raise ConfigError(f"its options clash with options already defined: {', '.join(clash)}")
        except Exception as exc:
            statuses.append(
                HookStatus(name=ep.name, value=ep.value, state="failed", error=f"{type(exc).__name__}: {exc}")
            )
            continue
        taken.update(names)
        status = HookStatus(name=ep.name, value=ep.value, state="loaded", options=tuple(o.opts[0] for o in options))
        statuses.append(status)
        loaded.append((hook, status))
    _HOOKS = loaded
    _STATUSES[:] = statuses
    return [hook for hook, _ in loaded]


def _discover() -> list[importlib.metadata.EntryPoint]:
    seen: dict[str, importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        seen.setdefault(ep.name, ep)
    return [seen[name] for name in sorted(seen)]


def _load_one(ep: importlib.metadata.EntryPoint) -> DecodingHook:
    obj = ep.load()
    hook = obj if isinstance(obj, DecodingHook) else obj() if callable(obj) else obj
    if not isinstance(hook, DecodingHook):
        raise TypeError(f"{ep.value} is not a decoding hook (needs name, options() and start())")
    return hook


def decoding_hook_statuses() -> list[HookStatus]:
    """The status of every ``malot.decoding`` entry point seen by the last :func:`load_decoding_hooks`."""
    return list(_STATUSES)


def reset_decoding_hooks() -> None:
    """Forget the loaded hooks (for tests); imported modules stay imported."""
    global _HOOKS
    _HOOKS = None
    _STATUSES.clear()


def add_hook_options(command: click.Command) -> list[str]:
    """Add the options of every loaded hook to ``command``; return their parameter names."""
    reserved = {str(p.name) for p in command.params} | {
        flag for p in command.params for flag in getattr(p, "opts", []) + getattr(p, "secondary_opts", [])
    }
    added: list[str] = []
    for hook in load_decoding_hooks(reserved=reserved):
        for option in hook.options():
            command.params.append(option)
            added.append(str(option.name))
    return added


def start_decoding_runs(values: Mapping[str, Any], context: DecodingContext) -> list[DecodingRun]:
    """The runs of the hooks whose options the user gave (in hook order)."""
    runs: list[DecodingRun] = []
    for hook in load_decoding_hooks():
        run = hook.start(values, context)
        if run is not None:
            runs.append(run)
    return runs


class LogitsProcessorLLM(AsyncResource):
    """Wraps a model so every generation request also carries ``processors`` (scoring requests are left alone)."""

    def __init__(self, llm: LLM, processors: Sequence[LogitsProcessor]) -> None:
        self.llm = llm
        self.processors = list(processors)

    @property
    def capabilities(self) -> Capabilities:
        """The wrapped model's capabilities."""
        return self.llm.capabilities

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Add the processors to each sampling request, then let the wrapped model answer."""
        adjusted = [
            r
            if r.score_continuation is not None
            else r.model_copy(update={"logits_processors": [*r.logits_processors, *self.processors]})
            for r in requests
        ]
        return await self.llm.generate(adjusted)

    async def aclose(self) -> None:
        """Nothing to release: the wrapped model is closed by its owner."""


class DecodingSession(AsyncResource):
    """The decoding runs of one proof: enter to get :attr:`llm` (``None``: the prover builds its own), exit to close.

    When a run adds logits processors and no run chose a model, the session builds the configured model itself
    (so it can wrap it) and closes it on exit.
    """

    def __init__(self, runs: Sequence[DecodingRun], settings: Settings) -> None:
        self.runs = list(runs)
        self.settings = settings
        self.llm: LLM | None = None
        self._own: LLM | None = None

    async def open(self) -> None:
        """Let every run adjust the model; wrap it with the runs' logits processors."""
        llm: LLM | None = None
        for run in self.runs:
            llm = await run.adjust_llm(llm)
        processors = [p for run in self.runs for p in run.logits_processors()]
        if processors:
            if llm is None:
                from malot.llm import load_llm
                from malot.provers.api import resolve_setup

                model = resolve_setup(self.settings).model  # the preset's model, as the prover would load
                self._own = load_llm(self.settings.llm.model_copy(update={"model": model}))
                llm = await self._own.__aenter__()
            llm = LogitsProcessorLLM(llm, processors)
        self.llm = llm

    async def aclose(self) -> None:
        """Close every run (all of them, even when one fails; the first error is raised) and the model built here."""
        first: BaseException | None = None
        for run in reversed(self.runs):
            try:
                await run.aclose()
            except Exception as exc:
                first = first or exc
        if self._own is not None:
            own, self._own = self._own, None
            with contextlib.suppress(Exception):
                await own.aclose()
        self.runs = []
        if first is not None:
            raise first
