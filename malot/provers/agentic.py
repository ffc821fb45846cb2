"""``--strategy agentic``: a prover that calls ``lean_check`` and ``retrieve_demos`` while it thinks.

The prover is the core's tool loop (:mod:`malot.agents.tool_agent`) with a proving prompt and two tools bound to the
problem: ``lean_check`` runs the acceptance rule on a draft and returns Lean's errors and goals (interleaved
verification), ``retrieve_demos`` returns solved problems like it. ``max_tool_calls`` bounds the calls of an
attempt; after the last one the tools are withdrawn and the model must answer.

Workflow of one attempt::

    prover --tool_calls--> tools --> prover ... --answer--> answer --> verifier --> END
                                                       (rejected, rounds left) --> prover (with the verdict)

The final answer's last Lean block goes through the :class:`~malot.provers.agents.VerifierAgent`, the one
acceptance rule every strategy uses. A ``lean_check`` verdict inside the loop is only information for the model:
it is never the proof's verdict (the in-loop checks do not share the verifier's verdict cache, so the final check
always runs on its own).
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from malot.agents import END, Agent, Edge, Message, RouteView, RunContext, Task, Usage, Workflow
from malot.agents.tool_agent import (
    LOOP_STATE_KEY,
    ModelTurnAgent,
    ToolBox,
    ToolCallsAgent,
    ToolConversation,
    ToolLoopDeps,
)
from malot.agents.tool_source import ToolCallError, ToolResult, ToolSpec
from malot.llm.base import ChatMessage, SamplingParams
from malot.provers.agents import ProofCandidate, ProofFeedback, ProverDeps, VerifierAgent
from malot.provers.extraction import extract_lean
from malot.provers.feedback import format_errors
from malot.provers.strategies import Strategy

if TYPE_CHECKING:
    from malot.config import Settings

__all__ = ["AGENTIC_SYSTEM_PROMPT", "Agentic", "AgenticProverAgent", "AnswerAgent", "ProblemToolSource"]

AGENTIC_SYSTEM_PROMPT = """You are an expert in Lean 4 theorem proving.
You can call two tools while you work:
- lean_check(code): checks a complete Lean 4 theorem with its proof (the problem's header is added for you) and \
returns whether malot's acceptance rule accepts it, with Lean's errors and the goals at each error.
- retrieve_demos(query, k): returns solved problems similar to the query, to learn proof patterns from.
Check your drafts with lean_check and fix what Lean reports. When you are done, answer with the complete theorem \
and its proof in one ```lean4 code block."""

_CHECK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "description": "the theorem statement followed by its proof (no header needed)"}
    },
    "required": ["code"],
    "additionalProperties": False,
}
_DEMOS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "query": {"type": "string", "description": "a Lean statement or an informal description"},
        "k": {"type": "integer", "minimum": 1, "maximum": 8, "default": 3},
    },
    "required": ["query"],
    "additionalProperties": False,
}


class ProblemToolSource:
    """``lean_check`` and ``retrieve_demos`` bound to one problem's verifier, target and rule."""

    name = "prover"

    def __init__(self, deps: ProverDeps) -> None:
        self.deps = deps

    def specs(self) -> list[ToolSpec]:
        """The two tools' specs."""
        return [
            ToolSpec(
                name="lean_check",
                description="Check a draft proof of the theorem with Lean; returns the verdict and Lean's errors.",
                parameters=_CHECK_SCHEMA,
                tags=("lean", "verification"),
                source=self.name,
            ),
            ToolSpec(
                name="retrieve_demos",
                description="Solved problems similar to a query (statement and proof).",
                parameters=_DEMOS_SCHEMA,
                tags=("retrieval", "demonstrations"),
                source=self.name,
            ),
        ]

    async def list_tools(self) -> list[ToolSpec]:
        """The two tools."""
        return self.specs()

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        """Run ``lean_check`` (the acceptance rule on the draft) or ``retrieve_demos``."""
        if name == "lean_check":
            code = arguments.get("code")
            if not isinstance(code, str) or not code.strip():
                raise ToolCallError("lean_check needs 'code': the theorem and its proof", kind="invalid_arguments")
            return await self._check(code)
        if name == "retrieve_demos":
            query = arguments.get("query")
            k = arguments.get("k", 3)
            if not isinstance(query, str) or not isinstance(k, int):
                raise ToolCallError("retrieve_demos needs 'query' (text) and 'k' (integer)", kind="invalid_arguments")
            from malot.tools.builtin import retrieve_demos

            demos = await asyncio.to_thread(retrieve_demos, query, max(1, min(k, 8)))
            data = [d.model_dump() for d in demos]
            return ToolResult(content=json.dumps(data), data=data)
        raise ToolCallError(f"no tool named {name!r}; the tools are lean_check, retrieve_demos", kind="unknown_tool")

    async def _check(self, code: str) -> ToolResult:
        from malot.lean.acceptance import verify_candidate
        from malot.tools.builtin import check_output

        deps = self.deps
        header = deps.problem.header
        body = code[len(header) :] if header.strip() and code.startswith(header) else code
        # deliberately not deps.cache: an in-loop verdict must never stand in for the final check
        result = await verify_candidate(deps.verifier, deps.target, body, deps.rule, deps.lean_timeout)
        out = check_output(result)
        return ToolResult(content=out.model_dump_json(), data=out.model_dump(), lean_cpu_seconds=out.lean_cpu_seconds)


class AgenticProverAgent(ModelTurnAgent):
    """The prover's turns: starts from the problem (or from a rejected answer's verdict), may call the tools."""

    role = "prover"

    def __init__(self, *, max_tool_calls: int, tool_timeout: float | None) -> None:
        self.max_tool_calls = max_tool_calls
        self.tool_timeout = tool_timeout

    def _loop(self, ctx: RunContext[Any]) -> ToolLoopDeps:
        existing = ctx.state.get(LOOP_STATE_KEY)
        if isinstance(existing, ToolLoopDeps):
            return existing
        deps: ProverDeps = ctx.deps
        source = ProblemToolSource(deps)
        s = deps.sampling
        loop = ToolLoopDeps(
            llm=deps.llm,
            toolbox=ToolBox.of(source, source.specs()),
            system=AGENTIC_SYSTEM_PROMPT,
            sampling=SamplingParams(temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens, seed=s.seed),
            max_tool_calls=self.max_tool_calls,
            tool_timeout=self.tool_timeout,
        )
        ctx.state[LOOP_STATE_KEY] = loop
        return loop

    def start(self, message: Message, deps: ToolLoopDeps) -> ToolConversation:
        if isinstance(message, ToolConversation):
            return message
        if isinstance(message, ProofFeedback):
            conv = message.details.get("_conversation")
            assert isinstance(conv, ToolConversation)
            verdict = format_errors(message.messages, message.reasons)
            note = ChatMessage(
                role="user", content=f"malot's acceptance rule rejected that answer:\n{verdict}\nFix the proof."
            )
            return conv.model_copy(update={"outcome": "start", "messages": (*conv.messages, note)})
        return super().start(message, deps)

    async def run(self, message: Message, ctx: RunContext[Any]) -> ToolConversation:
        self._loop(ctx)
        if isinstance(message, ProofFeedback):
            message = message.model_copy(update={"details": {**message.details, "_conversation": ctx.state["conv"]}})
        conv = await super().run(message, ctx)
        ctx.state["conv"] = conv
        return conv


class AnswerAgent(Agent[ToolConversation, ProofCandidate]):
    """Turns the model's final answer into a candidate: its last Lean block (verified by the next node)."""

    role = "answer"

    async def run(self, message: ToolConversation, ctx: RunContext[Any]) -> ProofCandidate:
        first = ctx.history[0] if ctx.history else None
        sample = int(first.params.get("sample", 0)) if isinstance(first, Task) else 0
        extraction = extract_lean(message.answer)
        failures = sum(1 for m in ctx.history if isinstance(m, ProofFeedback))
        checks = [r for r in message.records if r.tool == "lean_check"]
        ctx.note(extraction=extraction.reason or "ok", tool_calls=message.calls_made, lean_checks_in_loop=len(checks))
        text = message.answer
        code = extraction.code or ""
        thought = text[: text.rfind("```lean")].strip() if "```lean" in text else None
        return ProofCandidate(
            outcome="candidate" if extraction.ok else "no_code",
            code=code,
            thought=thought or None,
            round=failures,
            sample=sample,
            raw_output=text,
            extraction_error=extraction.reason,
            truncated=extraction.truncated,
            repeated=extraction.repeated,
            usage=Usage(),
        )


class Agentic(Strategy):
    """The tool-using prover (see the module docstring); ``rounds``: how often a rejected answer goes back."""

    name = "agentic"

    def __init__(self, *, rounds: int = 0, max_tool_calls: int = 8, tool_timeout: float | None = 300.0) -> None:
        super().__init__(rounds=rounds)
        if max_tool_calls < 0:
            from malot.errors import ConfigError

            raise ConfigError(f"max_tool_calls must be >= 0, got {max_tool_calls}")
        self.max_tool_calls = max_tool_calls
        self.tool_timeout = tool_timeout

    @classmethod
    def from_settings(cls, *, rounds: int, settings: Settings | None = None) -> Strategy:
        return cls(rounds=rounds)

    def inputs(self, problem: Any, samples: int) -> list[Task]:
        tasks = super().inputs(problem, samples)
        informal = f"{problem.informal}\n\n" if problem.informal else ""
        text = f"{informal}Prove this Lean 4 theorem:\n```lean4\n{problem.header}{problem.statement}\n```"
        return [t.model_copy(update={"statement": text}) for t in tasks]

    def workflow(self) -> Workflow:
        rounds = self.rounds

        def retry(message: Message, view: RouteView) -> bool:
            return isinstance(message, ProofFeedback) and view.visits["verifier"] <= rounds

        per_round = 2 * self.max_tool_calls + 3
        return Workflow(
            "agentic",
            [
                AgenticProverAgent(max_tool_calls=self.max_tool_calls, tool_timeout=self.tool_timeout),
                ToolCallsAgent(),
                AnswerAgent(),
                VerifierAgent(),
            ],
            [
                Edge("prover", "tools", "tool_calls"),
                Edge("prover", "answer"),
                ("tools", "prover"),
                ("answer", "verifier"),
                Edge("verifier", END, "verified"),
                Edge("verifier", "prover", retry),
                Edge("verifier", END),
            ],
            start="prover",
            max_steps=per_round * (rounds + 1) + 1,
        )

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "max_tool_calls": self.max_tool_calls}
