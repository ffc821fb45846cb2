"""Prompt templates, one per model family, shipped as TOML package data in ``malot/provers/templates/``.

A template says how a model family is asked to prove (and, for MA-LoT, to correct): its ``kind`` is

* ``completion`` - plain text ending inside an open Lean block the model continues (DeepSeek-Prover-V1.5);
* ``chat`` - chat messages rendered by the model's chat template (DeepSeek-Prover-V2, Goedel-Prover-V2, Kimina);
* ``infill`` - a fill-in-the-middle prompt whose hole is the proof body (CodeGen2);
* ``lot`` - MA-LoT's raw long chain-of-thought layout with two passes (LoT-Solver): ``prompt`` opens
  ``<Thought>``, generation stops at ``thought_stop``, then ``output_prefix`` closes the thought, opens
  ``<Output>`` and pre-fills a Lean block with header and statement, and the model writes the proof.

Placeholders are ``{{name}}`` (see :class:`malot.agents.PromptTemplate`): ``name``, ``header``, ``statement``,
``informal``, ``informal_doc`` (the informal statement as a doc comment), ``demos`` (rendered demonstrations);
demonstrations also get ``proof``; corrector prompts also get ``previous_proof`` (errors marked inline),
``previous_thought``, ``errors`` and ``history``. A template is chosen by name (``prover.template``) or by a path to
a TOML file of the same shape.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from malot.agents import PromptTemplate
from malot.errors import ConfigError

__all__ = [
    "TEMPLATE_DIR",
    "ModelTemplate",
    "RenderedPrompt",
    "available_templates",
    "load_template",
    "open_lean_block",
]

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"

TemplateKind = Literal["completion", "chat", "infill", "lot"]

_NO_INFORMAL = "(no natural-language statement is given; work from the Lean statement)"


@dataclass(frozen=True, slots=True)
class RenderedPrompt:
    """A prompt ready for the LLM layer: the prompt itself, the stop strings, and the Lean text it pre-fills.

    ``prompt`` is a string (completion, lot), a list of ``{"role", "content"}`` dicts (chat) or ``(prefix, suffix)``
    (infill); agents turn it into a :class:`malot.llm.GenerationRequest`. ``prefill`` is the open Lean block the
    model continues (empty for chat); extraction prepends it to the output.
    """

    kind: TemplateKind
    prompt: str | list[dict[str, str]] | tuple[str, str]
    stop: tuple[str, ...]
    prefill: str = ""

    def to_request_prompt(self) -> Any:
        """The prompt as the LLM layer's type: ``str``, ``list[ChatMessage]`` or ``InfillPrompt``."""
        from malot.llm import ChatMessage, InfillPrompt

        if isinstance(self.prompt, str):
            return self.prompt
        if isinstance(self.prompt, tuple):
            return InfillPrompt(prefix=self.prompt[0], suffix=self.prompt[1])
        return [ChatMessage.model_validate(m) for m in self.prompt]

    def golden_text(self) -> str:
        """A stable plain-text rendering (used by the golden-file tests and ``--dry-run`` style output)."""
        if isinstance(self.prompt, str):
            body = self.prompt
        elif isinstance(self.prompt, tuple):
            body = f"<prefix>\n{self.prompt[0]}</prefix>\n<suffix>\n{self.prompt[1]}</suffix>"
        else:
            body = "\n".join(f"<{m['role']}>\n{m['content']}\n</{m['role']}>" for m in self.prompt)
        return f"kind: {self.kind}\nstop: {list(self.stop)!r}\n---\n{body}"


class ModelTemplate(BaseModel):
    """One model family's prompts (validated from a TOML file)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    family: str
    kind: TemplateKind
    description: str = ""
    prompt: str | None = None
    system: str | None = None
    prefix: str | None = None
    suffix: str = ""
    demonstration: str | None = None
    corrector: str | None = None
    corrector_system: str | None = None
    output_prefix: str | None = None
    stop: list[str] = []
    thought_stop: list[str] = []

    @property
    def supports_correction(self) -> bool:
        """Whether the template has a corrector prompt (needed by MA-LoT's correction rounds)."""
        return self.corrector is not None

    @property
    def uses_demonstrations(self) -> bool:
        """Whether the prover prompt shows few-shot demonstrations."""
        return self.prompt is not None and "{{demos}}" in self.prompt.replace(" ", "")

    def render_demos(self, demos: Sequence[Mapping[str, str]]) -> str:
        """Render demonstrations (mappings with name, informal, header, statement, proof) into one block."""
        if not demos or self.demonstration is None:
            return ""
        template = PromptTemplate(self.demonstration)
        out = []
        for demo in demos:
            values = _problem_values(demo)
            values["proof"] = demo.get("proof", "")
            out.append(template.render(**values))
        return "".join(out)

    def render_prover(self, problem: Mapping[str, Any], demos: Sequence[Mapping[str, str]] = ()) -> RenderedPrompt:
        """The first prompt for ``problem`` (a mapping with name, header, statement, informal)."""
        values = _problem_values(problem)
        values["demos"] = self.render_demos(demos)
        stop = self.thought_stop if self.kind == "lot" else self.stop
        return self._render(self.prompt, self.system, values, stop)

    def render_output_prefix(self, problem: Mapping[str, Any]) -> str:
        """For ``lot`` templates: the text appended after the thought (closes it, opens the Lean block)."""
        if self.output_prefix is None:
            raise ConfigError(f"template {self.name!r} has no output_prefix", hint="lot templates need one")
        return PromptTemplate(self.output_prefix).render(**_problem_values(problem))

    def render_corrector(self, problem: Mapping[str, Any], feedback: Mapping[str, str]) -> RenderedPrompt:
        """The correction prompt: ``feedback`` has previous_proof, previous_thought, errors and history."""
        if self.corrector is None:
            raise ConfigError(
                f"template {self.name!r} has no corrector prompt, so it cannot run MA-LoT's correction rounds",
                hint="use --strategy whole-proof with this template, or a template with a corrector",
            )
        values = _problem_values(problem)
        values.update({k: feedback.get(k, "") for k in ("previous_proof", "previous_thought", "errors", "history")})
        stop = self.thought_stop if self.kind == "lot" else self.stop
        return self._render(self.corrector, self.corrector_system or self.system, values, stop)

    def _render(
        self, text: str | None, system: str | None, values: dict[str, str], stop: Sequence[str]
    ) -> RenderedPrompt:
        if self.kind == "infill":
            if self.prefix is None:
                raise ConfigError(f"infill template {self.name!r} needs a prefix")
            prefix = PromptTemplate(self.prefix).render(**values)
            suffix = PromptTemplate(self.suffix).render(**values)
            return RenderedPrompt("infill", (prefix, suffix), tuple(stop), prefill=prefix)
        if text is None:
            raise ConfigError(f"template {self.name!r} has no prompt")
        body = PromptTemplate(text).render(**values)
        if self.kind == "chat":
            messages = []
            if system:
                messages.append({"role": "system", "content": PromptTemplate(system).render(**values)})
            messages.append({"role": "user", "content": body})
            return RenderedPrompt("chat", messages, tuple(stop))
        prefill = open_lean_block(body) if self.kind == "completion" else ""
        return RenderedPrompt(self.kind, body, tuple(stop), prefill=prefill)


def open_lean_block(text: str) -> str:
    """The unclosed Lean block at the end of ``text`` (from its opening fence), or ``""`` when none is open."""
    from malot.provers.extraction import find_lean_blocks

    blocks = find_lean_blocks(text)
    if blocks and not blocks[-1].closed:
        return text[blocks[-1].fence_start :]
    return ""


def _problem_values(problem: Mapping[str, Any]) -> dict[str, str]:
    informal = (problem.get("informal") or "").strip()
    doc = ""
    if informal:
        doc = informal + "\n" if informal.startswith("/--") else f"/-- {informal} -/\n"
    statement = str(problem.get("statement", "")).rstrip()
    return {
        "name": str(problem.get("name", "")),
        "header": str(problem.get("header", "")),
        "statement": statement,
        "informal": _strip_doc(informal) or _NO_INFORMAL,
        "informal_doc": doc,
    }


def _strip_doc(text: str) -> str:
    if text.startswith("/--") and text.endswith("-/"):
        return text[3:-2].strip()
    return text


def available_templates() -> list[str]:
    """Names of the templates shipped with malot."""
    return sorted(p.stem for p in TEMPLATE_DIR.glob("*.toml"))


@cache
def load_template(name_or_path: str) -> ModelTemplate:
    """A template by name (``lot-solver``) or by path to a TOML file."""
    path = Path(name_or_path)
    if not (path.suffix == ".toml" and path.is_file()):
        path = TEMPLATE_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        import difflib

        names = available_templates()
        close = difflib.get_close_matches(name_or_path, names, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"templates: {', '.join(names)}"
        raise ConfigError(f"unknown prompt template {name_or_path!r}", hint=hint)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return ModelTemplate.model_validate(data)
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise ConfigError(f"prompt template {path} is invalid: {exc}", hint="fix the TOML file") from None
