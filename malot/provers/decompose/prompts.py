"""The decomposition prompts: an informal plan, a formal skeleton from it, and a revised skeleton.

They are plain text with ``{{name}}`` placeholders (:class:`malot.agents.PromptTemplate`); for chat templates the
text is sent as one user message. Each names what it asks for in a fixed phrase (``informal proof plan``,
``proof skeleton``) so logs and scripted test models can tell the calls apart.
"""

from __future__ import annotations

from typing import Any

from malot.agents import PromptTemplate

__all__ = ["PLAN_PROMPT", "SKELETON_PROMPT", "as_request_prompt", "render"]

PLAN_PROMPT = PromptTemplate(
    "Write an informal proof plan for the theorem below: a few numbered steps, each an intermediate claim that "
    "follows from the hypotheses and the earlier steps, ending with how the steps give the goal.\n\n"
    "@ Natural language statement:\n{{informal}}\n\n"
    "@ Lean 4 statement:\n```lean4\n{{header}}{{statement}}\n```\n\n@ Plan:\n"
)

SKELETON_PROMPT = PromptTemplate(
    "Turn the plan into a Lean 4 proof skeleton of the theorem below. Prove the theorem from intermediate steps "
    "written as `{{step_form}}`, leaving the proof of every step as `sorry` and closing the goal from the steps "
    "without any other `sorry`. Answer with the whole theorem in one ```lean4 code block.\n\n"
    "@ Plan:\n{{plan}}\n\n"
    "@ Lean 4 statement:\n```lean4\n{{header}}{{statement}}\n```\n"
    "{{revision}}"
)

REVISION = PromptTemplate(
    "\n@ A previous proof skeleton was rejected:\n```lean4\n{{previous}}\n```\n@ Why:\n{{reason}}\n"
    "Write a corrected proof skeleton.\n"
)


def render(template: PromptTemplate, **values: Any) -> str:
    """Render ``template`` with ``values`` (missing informal statements read as a short note)."""
    if not values.get("informal"):
        values["informal"] = "(no natural-language statement; work from the Lean statement)"
    return template.render(**values)


def as_request_prompt(text: str, kind: str) -> Any:
    """``text`` as the LLM layer's prompt: one user message for chat templates, else the plain text."""
    if kind == "chat":
        from malot.llm import ChatMessage

        return [ChatMessage(role="user", content=text)]
    return text
